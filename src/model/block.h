// Blocks and functions: a model as a chain of minimal blocks, with the figures the planner and the latency
// model reason from.
//
// A block is the smallest unit a model can be cut at (a ResNet bottleneck, a transformer layer, an embedding, a
// head). Its figures are per sample and come from the model's real layer shapes (see zoo.cc): parameters, work
// (multiply-adds), activations, and the list of GPU kernels it launches (`ops`), which the latency model prices
// one by one. Sizes are kept in elements so that the same block can be priced in fp16 or fp32.
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace fluidfaas::model {

enum class DType { kFp16, kFp32 };
std::string_view ToString(DType dtype);
Result<DType> ParseDType(std::string_view text);
constexpr int64_t BytesPerElement(DType dtype) {
  return dtype == DType::kFp16 ? 2 : 4;
}

enum class BlockKind {
  kStem,        // CNN stem: first convolution(s) and pooling
  kBottleneck,  // ResNet bottleneck
  kEmbedding,   // token (and position) embedding, or ViT patch embedding
  kEncoder,     // bidirectional transformer layer (ViT, BERT)
  kDecoder,     // causal transformer layer (GPT-2, Llama)
  kHead,        // classifier, pooler or language-model head
  kCustom,      // a block of a function author's TorchScript model
};
std::string_view ToString(BlockKind kind);

// One kind of GPU kernel a block launches.
struct Op {
  enum class Class {
    kMatmul,  // GEMM (linear layer, attention product): bound by the slice's SMs, or its bandwidth when tiny
    kConv,    // convolution: the same, but frameworks run fp32 convolutions on TF32 tensor cores
    kMemory,  // elementwise, normalisation, softmax, copy: bound by the slice's memory bandwidth
  };
  Class op_class = Class::kMemory;
  int count = 1;            // identical kernels launched per block call
  double macs = 0;          // multiply-adds per sample, per kernel
  double act_elems = 0;     // activation elements read + written per sample, per kernel
  double weight_elems = 0;  // weight elements read per kernel call (once per batch)
};

struct Block {
  std::string name;
  BlockKind kind = BlockKind::kEncoder;
  int64_t params = 0;              // parameters this block owns
  int64_t tied_params = 0;         // parameters owned by block `tied_to` that this one also reads
  int tied_to = -1;                // index of the block owning `tied_params`; -1 when none
  double macs = 0;                 // multiply-adds per sample (FLOPs = 2 x macs)
  int64_t out_elems = 0;           // activation elements this block hands to the next, per sample
  int64_t peak_act_elems = 0;      // most activation elements alive at once inside the block, per sample
  int64_t state_elems = 0;         // elements kept for the whole call, per sample (the KV cache of a decoder)
  int64_t kv_elems_per_token = 0;  // cache elements one token adds (a decoder's keys and values); 0 elsewhere
  std::vector<Op> ops;

  double flops() const { return 2 * macs; }
  int64_t ParamBytes(DType dtype) const { return params * BytesPerElement(dtype); }
  int64_t ActivationOutBytes(DType dtype) const { return out_elems * BytesPerElement(dtype); }
};

struct FunctionSpec {
  std::string name;
  DType dtype = DType::kFp32;
  std::vector<Block> blocks;
  double slo_ms = 0;  // latency objective; 0 until a deployment sets it
  int max_batch = 32;
  std::vector<int64_t> input_shape;  // per sample (no batch dimension)
  std::vector<int64_t> output_shape;
  int seq_len = 0;  // tokens per sample for transformers; 0 for CNNs

  int64_t TotalParams() const;  // tied parameters counted once
  double TotalMacs() const;
};

}  // namespace fluidfaas::model
