#include "model/zoo.h"

#include <algorithm>
#include <array>

#include "common/strings.h"

namespace fluidfaas::model {
namespace {

// Accumulates one block: parameters, multiply-adds, kernels and the activation high-water mark.
class BlockBuilder {
 public:
  BlockBuilder(std::string name, BlockKind kind, int64_t residual_elems = 0) : residual_(residual_elems) {
    block_.name = std::move(name);
    block_.kind = kind;
  }

  // A GEMM kernel. `params` are owned by the block (0 for activation x activation products).
  BlockBuilder& Matmul(double macs, double in, double out, int64_t params, int count = 1,
                       Op::Class op_class = Op::Class::kMatmul) {
    block_.ops.push_back(Op{op_class, count, macs, in + out, static_cast<double>(params)});
    return Account(macs * count, in, out, params * count);
  }

  // A bandwidth-bound kernel (elementwise, norm, softmax, gather, copy), optionally owning `params`.
  BlockBuilder& Memory(double in, double out, int count = 1, int64_t params = 0) {
    block_.ops.push_back(Op{Op::Class::kMemory, count, 0, in + out, static_cast<double>(params)});
    return Account(0, in, out, params);
  }

  // Convolution with "same" padding: k x k, stride s, on a square input of side `h`; updates `h`.
  BlockBuilder& Conv(int64_t cin, int64_t cout, int64_t k, int64_t stride, int64_t& h, bool bias = false) {
    const int64_t out_h = (h + stride - 1) / stride;
    const double in = static_cast<double>(cin * h * h);
    const double out = static_cast<double>(cout * out_h * out_h);
    Matmul(static_cast<double>(k * k * cin * cout * out_h * out_h), in, out, k * k * cin * cout + (bias ? cout : 0), 1,
           Op::Class::kConv);
    h = out_h;
    return *this;
  }
  BlockBuilder& BatchNorm(int64_t c, int64_t h) {
    const double n = static_cast<double>(c * h * h);
    return Memory(n, n, 1, 2 * c);
  }
  BlockBuilder& Elementwise(double n, int inputs = 1, int count = 1) { return Memory(inputs * n, n, count); }

  BlockBuilder& State(int64_t elems) {
    block_.state_elems += elems;
    return *this;
  }
  BlockBuilder& KvPerToken(int64_t elems) {
    block_.kv_elems_per_token = elems;
    return *this;
  }
  BlockBuilder& ExtraParams(int64_t params) {
    block_.params += params;
    return *this;
  }

  Block Finish(int64_t out_elems) {
    block_.out_elems = out_elems;
    return std::move(block_);
  }

 private:
  BlockBuilder& Account(double macs, double in, double out, int64_t params) {
    block_.macs += macs;
    block_.params += params;
    block_.peak_act_elems = std::max(block_.peak_act_elems, residual_ + static_cast<int64_t>(in + out));
    return *this;
  }

  Block block_;
  int64_t residual_;
};

// ------------------------------------------------------------------------------------------------ ResNet

void BuildResNet(FunctionSpec& f, const std::array<int, 4>& depth) {
  int64_t h = 224;
  BlockBuilder stem("stem", BlockKind::kStem);
  stem.Conv(3, 64, 7, 2, h).BatchNorm(64, h).Elementwise(64.0 * h * h);
  const int64_t before_pool = h;
  h = (h + 1) / 2;
  stem.Memory(64.0 * before_pool * before_pool, 64.0 * h * h);  // 3x3 max pool, stride 2
  f.blocks.push_back(stem.Finish(64 * h * h));

  int64_t channels = 64;
  const int64_t widths[] = {64, 128, 256, 512};
  for (int layer = 0; layer < 4; ++layer) {
    const int64_t w = widths[layer];
    for (int i = 0; i < depth[layer]; ++i) {
      const int64_t stride = (layer > 0 && i == 0) ? 2 : 1;
      const int64_t in_elems = channels * h * h;
      BlockBuilder b("layer" + std::to_string(layer + 1) + "." + std::to_string(i), BlockKind::kBottleneck, in_elems);
      int64_t hh = h;
      b.Conv(channels, w, 1, 1, hh).BatchNorm(w, hh).Elementwise(static_cast<double>(w * hh * hh));
      b.Conv(w, w, 3, stride, hh).BatchNorm(w, hh).Elementwise(static_cast<double>(w * hh * hh));
      b.Conv(w, 4 * w, 1, 1, hh).BatchNorm(4 * w, hh);
      if (i == 0) {
        int64_t hd = h;
        b.Conv(channels, 4 * w, 1, stride, hd).BatchNorm(4 * w, hd);
      }
      const double out = static_cast<double>(4 * w * hh * hh);
      b.Elementwise(out, 2).Elementwise(out);  // residual add, ReLU
      channels = 4 * w;
      h = hh;
      f.blocks.push_back(b.Finish(channels * h * h));
    }
  }
  BlockBuilder head("head", BlockKind::kHead);
  head.Memory(static_cast<double>(channels * h * h), static_cast<double>(channels));  // global average pool
  head.Matmul(static_cast<double>(channels * 1000), static_cast<double>(channels), 1000, channels * 1000 + 1000);
  f.blocks.push_back(head.Finish(1000));
  f.input_shape = {3, 224, 224};
  f.output_shape = {1000};
}

// ------------------------------------------------------------------------------------------- Transformers

struct TransformerShape {
  int64_t d;  // hidden size
  int64_t heads;
  int64_t ffn;  // MLP inner size
  int64_t layers;
  int64_t vocab;  // 0 for ViT
  int64_t max_positions;
  int64_t kv_heads = 0;  // key/value heads (grouped-query attention); 0: as many as `heads`

  int64_t kv_dim() const { return (kv_heads == 0 ? heads : kv_heads) * (d / heads); }
};

// The tokens one call of a transformer layer works on: `q` new tokens (queries) attending to `k` tokens (the new
// ones and those already cached). A whole-sequence pass (an encoder, a prefill) has q = k; a decode step q = 1.
struct Tokens {
  double q;
  double k;
};

// Self-attention: projections (fused QKV or separate), scores, softmax, weighted sum, output projection. The keys
// and values of the new tokens are projected; those of earlier tokens are read from the cache (decode).
void Attention(BlockBuilder& b, const TransformerShape& t, Tokens n, bool fused_qkv, bool bias, bool causal) {
  const double d = static_cast<double>(t.d);
  const double kv = static_cast<double>(t.kv_dim());
  const double qd = n.q * d;
  const double scores = static_cast<double>(t.heads) * n.q * n.k;
  const int64_t bias_params = bias ? t.d : 0;
  if (fused_qkv) {
    b.Matmul(qd * 3 * t.d, qd, 3 * qd, 3 * (t.d * t.d + bias_params));
  } else if (t.kv_dim() == t.d) {
    b.Matmul(qd * t.d, qd, qd, t.d * t.d + bias_params, 3);
  } else {  // grouped-query attention: smaller key and value projections
    b.Matmul(qd * t.d, qd, qd, t.d * t.d + bias_params);
    b.Matmul(qd * kv, qd, n.q * kv, t.d * t.kv_dim(), 2);
  }
  b.Memory(n.q * (d + 2 * kv), n.q * (d + 2 * kv));     // split heads
  if (n.k > n.q) b.Memory(2 * n.q * kv, 2 * n.q * kv);  // the new keys and values written into the cache
  b.Matmul(n.k * qd, qd + n.k * kv, scores, 0);         // Q K^T
  if (causal && n.q > 1) b.Elementwise(scores, 2);      // mask (a single query sees every key)
  b.Memory(scores, scores);                             // softmax (scaled)
  b.Matmul(n.k * qd, scores + n.k * kv, qd, 0);         // attention x V
  b.Memory(qd, qd);                                     // merge heads
  b.Matmul(qd * t.d, qd, qd, t.d * t.d + bias_params);  // output projection
  b.Elementwise(qd, 2);                                 // residual add
}

// LayerNorm (one kernel, weight and bias) or RMSNorm (eager: square, mean, rsqrt, scale; weight only).
void Norm(BlockBuilder& b, const TransformerShape& t, double s, bool rms) {
  const double sd = s * static_cast<double>(t.d);
  if (rms) {
    b.Memory(sd, sd, 4, t.d);
  } else {
    b.Memory(sd, sd, 1, 2 * t.d);
  }
}

// GELU MLP (ViT, BERT, GPT-2) or SwiGLU (Llama).
void Mlp(BlockBuilder& b, const TransformerShape& t, double s, bool swiglu) {
  const double sd = s * static_cast<double>(t.d);
  const double sf = s * static_cast<double>(t.ffn);
  if (swiglu) {
    b.Matmul(sd * t.ffn, sd, sf, t.d * t.ffn, 2);  // gate and up
    b.Elementwise(sf).Elementwise(sf, 2);          // SiLU, product
    b.Matmul(sf * t.d, sf, sd, t.ffn * t.d);
  } else {
    b.Matmul(sd * t.ffn, sd, sf, t.d * t.ffn + t.ffn);
    b.Elementwise(sf);  // GELU
    b.Matmul(sf * t.d, sf, sd, t.ffn * t.d + t.d);
  }
  b.Elementwise(sd, 2);  // residual add
}

enum class Family { kVit, kBert, kGpt2, kLlama };

Block TransformerLayer(Family family, const TransformerShape& t, Tokens n, int index) {
  const bool decoder = family == Family::kGpt2 || family == Family::kLlama;
  const bool llama = family == Family::kLlama;
  const std::string prefix = family == Family::kVit    ? "encoder."
                             : family == Family::kBert ? "layer."
                             : family == Family::kGpt2 ? "h."
                                                       : "layers.";
  const auto q = static_cast<int64_t>(n.q);
  BlockBuilder b(prefix + std::to_string(index), decoder ? BlockKind::kDecoder : BlockKind::kEncoder, q * t.d);
  const double qd = n.q * static_cast<double>(t.d);
  Norm(b, t, n.q, llama);
  if (llama) b.Elementwise(qd, 2, 6);  // rotary embedding of q and k (eager: slices, negation, products, sums)
  Attention(b, t, n, /*fused_qkv=*/!llama && family != Family::kBert, /*bias=*/!llama, decoder);
  Norm(b, t, n.q, llama);
  Mlp(b, t, n.q, llama);
  if (decoder) b.State(2 * static_cast<int64_t>(n.k) * t.kv_dim()).KvPerToken(2 * t.kv_dim());
  return b.Finish(q * t.d);
}

// `n`: the tokens of one call (a whole sequence: q = k; a decode step: q = 1). Embeddings and norms run on the new
// tokens; a language-model head on the last one.
void BuildTransformer(FunctionSpec& f, Family family, const TransformerShape& t, Tokens n) {
  const auto s = static_cast<int64_t>(n.q);
  const double sd = static_cast<double>(s * t.d);
  switch (family) {
    case Family::kVit: {
      const int64_t patches = s - 1;
      BlockBuilder e("embed", BlockKind::kEmbedding);
      e.Matmul(static_cast<double>(patches * 768 * t.d), 3.0 * 224 * 224, static_cast<double>(patches * t.d),
               768 * t.d + t.d, 1, Op::Class::kConv);  // 16x16 patch convolution
      e.Memory(sd, sd, 1, t.d);                        // prepend the class token
      e.Elementwise(sd, 2, 1).ExtraParams(197 * t.d);  // add position embeddings (197 positions)
      f.blocks.push_back(e.Finish(s * t.d));
      f.input_shape = {3, 224, 224};
      break;
    }
    case Family::kBert: {
      BlockBuilder e("embeddings", BlockKind::kEmbedding);
      e.Memory(static_cast<double>(s), sd, 1, t.vocab * t.d);  // token gather
      e.Memory(static_cast<double>(s), sd, 1, t.max_positions * t.d);
      e.Memory(static_cast<double>(s), sd, 1, 2 * t.d);  // token types
      e.Elementwise(sd, 2, 2);
      Norm(e, t, static_cast<double>(s), false);
      f.blocks.push_back(e.Finish(s * t.d));
      f.input_shape = {s};
      break;
    }
    case Family::kGpt2:
    case Family::kLlama: {
      BlockBuilder e(family == Family::kGpt2 ? "wte+wpe" : "embed_tokens", BlockKind::kEmbedding);
      e.Memory(static_cast<double>(s), sd, 1, t.vocab * t.d);
      if (family == Family::kGpt2) e.Memory(static_cast<double>(s), sd, 1, t.max_positions * t.d).Elementwise(sd, 2);
      f.blocks.push_back(e.Finish(s * t.d));
      f.input_shape = {s};
      break;
    }
  }
  for (int i = 0; i < t.layers; ++i) f.blocks.push_back(TransformerLayer(family, t, n, i));

  const double d = static_cast<double>(t.d);
  switch (family) {
    case Family::kVit: {
      BlockBuilder h("head", BlockKind::kHead);
      Norm(h, t, static_cast<double>(s), false);
      h.Matmul(d * 1000, d, 1000, t.d * 1000 + 1000);
      f.blocks.push_back(h.Finish(1000));
      f.output_shape = {1000};
      break;
    }
    case Family::kBert: {
      BlockBuilder h("pooler", BlockKind::kHead);
      h.Matmul(d * d, d, d, t.d * t.d + t.d).Elementwise(d);  // dense + tanh on the first token
      f.blocks.push_back(h.Finish(t.d));
      f.output_shape = {t.d};
      break;
    }
    case Family::kGpt2:
    case Family::kLlama: {
      const bool llama = family == Family::kLlama;
      BlockBuilder h(llama ? "norm+lm_head" : "ln_f+lm_head", BlockKind::kHead);
      Norm(h, t, static_cast<double>(s), llama);
      const double vocab = static_cast<double>(t.vocab);
      h.Matmul(d * vocab, d, vocab, llama ? t.vocab * t.d : 0);  // last position only
      Block head = h.Finish(t.vocab);
      if (!llama) {
        head.tied_params = t.vocab * t.d;  // GPT-2's LM head is the transposed token embedding
        head.tied_to = 0;
        head.ops.back().weight_elems = static_cast<double>(t.vocab * t.d);
      }
      f.blocks.push_back(std::move(head));
      f.output_shape = {t.vocab};
      break;
    }
  }
}

struct ModelDef {
  ZooEntry entry;
  Family family = Family::kVit;  // ignored for ResNets
  bool resnet = false;
  std::array<int, 4> resnet_depth{};
  TransformerShape shape{};
  int default_seq = 0;
  DType dtype = DType::kFp32;
  int max_batch = 1;
};

constexpr TransformerShape kNoShape{0, 0, 0, 0, 0, 0};

const std::array<ModelDef, 10> kModels = {{
    {{"resnet50", "ResNet-50 (torchvision), 224x224", 25.6e6},
     Family::kVit,
     true,
     {3, 4, 6, 3},
     kNoShape,
     0,
     DType::kFp32,
     64},
    {{"resnet152", "ResNet-152 (torchvision), 224x224", 60.2e6},
     Family::kVit,
     true,
     {3, 8, 36, 3},
     kNoShape,
     0,
     DType::kFp32,
     64},
    {{"vit-b16", "ViT-B/16 (torchvision), 224x224", 86.6e6},
     Family::kVit,
     false,
     {},
     {768, 12, 3072, 12, 0, 197},
     197,
     DType::kFp32,
     32},
    {{"vit-l16", "ViT-L/16 (torchvision), 224x224", 304.3e6},
     Family::kVit,
     false,
     {},
     {1024, 16, 4096, 24, 0, 197},
     197,
     DType::kFp32,
     32},
    {{"bert-base", "BERT-base uncased, 128 tokens", 110e6},
     Family::kBert,
     false,
     {},
     {768, 12, 3072, 12, 30522, 512},
     128,
     DType::kFp32,
     32},
    {{"bert-large", "BERT-large uncased, 128 tokens", 340e6},
     Family::kBert,
     false,
     {},
     {1024, 16, 4096, 24, 30522, 512},
     128,
     DType::kFp32,
     32},
    {{"gpt2-xl", "GPT-2 XL, 512-token prompt", 1542e6},
     Family::kGpt2,
     false,
     {},
     {1600, 25, 6400, 48, 50257, 1024},
     512,
     DType::kFp16,
     8},
    {{"llama2-7b", "Llama 2 7B, fp16, 512-token prefill", 6.7e9},
     Family::kLlama,
     false,
     {},
     {4096, 32, 11008, 32, 32000, 4096},
     512,
     DType::kFp16,
     4},
    {{"llama2-13b", "Llama 2 13B, fp16, 512-token prefill", 13.0e9},
     Family::kLlama,
     false,
     {},
     {5120, 40, 13824, 40, 32000, 4096},
     512,
     DType::kFp16,
     4},
    {{"tinyllama-1.1b", "TinyLlama 1.1B (Llama 2 architecture, grouped-query attention), fp16, 512-token prefill",
      1.1e9},
     Family::kLlama,
     false,
     {},
     {2048, 32, 5632, 22, 32000, 2048, 4},
     512,
     DType::kFp16,
     8},
}};

const std::array<ZooEntry, 10> kEntries = [] {
  std::array<ZooEntry, 10> out{};
  for (size_t i = 0; i < kModels.size(); ++i) out[i] = kModels[i].entry;
  return out;
}();

}  // namespace

std::span<const ZooEntry> ZooModels() {
  return kEntries;
}

namespace {

Result<const ModelDef*> FindModel(std::string_view name) {
  for (const ModelDef& m : kModels) {
    if (m.entry.name == name) return &m;
  }
  return Status::InvalidArgument("unknown model '" + std::string(name) +
                                 "' (zoo: " + Join(kEntries, ", ", [](const ZooEntry& e) { return e.name; }) + ")");
}

bool Generates(const ModelDef& m) {
  return !m.resnet && (m.family == Family::kGpt2 || m.family == Family::kLlama);
}

FunctionSpec Skeleton(const ModelDef& def, const ZooOptions& options) {
  FunctionSpec f;
  f.name = std::string(def.entry.name);
  f.dtype = options.dtype.value_or(def.dtype);
  f.max_batch = def.max_batch;
  return f;
}

}  // namespace

Result<FunctionSpec> BuildZooModel(std::string_view name, const ZooOptions& options) {
  FF_ASSIGN_OR_RETURN(const ModelDef* def, FindModel(name));
  FunctionSpec f = Skeleton(*def, options);
  if (def->resnet) {
    if (options.seq_len != 0) return Status::InvalidArgument(f.name + " is a CNN: it has no sequence length");
    BuildResNet(f, def->resnet_depth);
    return f;
  }
  const int seq = options.seq_len != 0 ? options.seq_len : def->default_seq;
  const int max_seq = static_cast<int>(def->shape.max_positions);
  if (seq < 2 || seq > max_seq) {
    return Status::InvalidArgument(f.name + ": sequence length " + std::to_string(seq) + " is not in 2.." +
                                   std::to_string(max_seq));
  }
  f.seq_len = seq;
  const auto s = static_cast<double>(seq);
  BuildTransformer(f, def->family, def->shape, Tokens{s, s});
  return f;
}

bool IsGenerativeZooModel(std::string_view name) {
  const Result<const ModelDef*> def = FindModel(name);
  return def.ok() && Generates(**def);
}

int ZooMaxPositions(std::string_view name) {
  const Result<const ModelDef*> def = FindModel(name);
  return def.ok() && !(*def)->resnet ? static_cast<int>((*def)->shape.max_positions) : 0;
}

Result<FunctionSpec> BuildZooDecodeStep(std::string_view name, int context, const ZooOptions& options) {
  FF_ASSIGN_OR_RETURN(const ModelDef* def, FindModel(name));
  FunctionSpec f = Skeleton(*def, options);
  if (!Generates(*def))
    return Status::InvalidArgument(f.name + " is not a decoder-only language model: it does not generate");
  if (options.seq_len != 0)
    return Status::InvalidArgument(f.name + ": a decode step takes a context, not a sequence length");
  const int max_context = static_cast<int>(def->shape.max_positions) - 1;
  if (context < 0 || context > max_context) {
    return Status::InvalidArgument(f.name + ": context " + std::to_string(context) + " is not in 0.." +
                                   std::to_string(max_context));
  }
  f.seq_len = 1;
  BuildTransformer(f, def->family, def->shape, Tokens{1, static_cast<double>(context) + 1});
  return f;
}

namespace {

Result<TransformerShape> Checked(const DecoderShape& s) {
  const bool ok = s.d >= 1 && s.heads >= 1 && s.d % s.heads == 0 && s.ffn >= 1 && s.layers >= 1 && s.vocab >= 2 &&
                  s.max_positions >= 2 && s.d <= (int64_t{1} << 16) && s.ffn <= (int64_t{1} << 20) &&
                  s.layers <= 1022 && s.vocab <= (int64_t{1} << 20) && s.max_positions <= (int64_t{1} << 16);
  if (!ok) {
    return Status::InvalidArgument(s.name +
                                   ": a decoder's dimensions must be positive and in range (heads divide "
                                   "d_model, 1..1022 layers, a vocabulary of 2 or more, 2 or more positions)");
  }
  return TransformerShape{s.d, s.heads, s.ffn, s.layers, s.vocab, s.max_positions};
}

FunctionSpec DecoderSkeleton(const DecoderShape& s) {
  FunctionSpec f;
  f.name = s.name;
  f.dtype = s.dtype;
  f.max_batch = 8;
  return f;
}

}  // namespace

Result<FunctionSpec> BuildDecoderModel(const DecoderShape& shape, int seq_len) {
  FF_ASSIGN_OR_RETURN(const TransformerShape t, Checked(shape));
  if (seq_len < 2 || seq_len > t.max_positions) {
    return Status::InvalidArgument(shape.name + ": sequence length " + std::to_string(seq_len) + " is not in 2.." +
                                   std::to_string(t.max_positions));
  }
  FunctionSpec f = DecoderSkeleton(shape);
  f.seq_len = seq_len;
  const auto s = static_cast<double>(seq_len);
  BuildTransformer(f, Family::kGpt2, t, Tokens{s, s});
  return f;
}

Result<FunctionSpec> BuildDecoderStep(const DecoderShape& shape, int context) {
  FF_ASSIGN_OR_RETURN(const TransformerShape t, Checked(shape));
  if (context < 0 || context > t.max_positions - 1) {
    return Status::InvalidArgument(shape.name + ": context " + std::to_string(context) + " is not in 0.." +
                                   std::to_string(t.max_positions - 1));
  }
  FunctionSpec f = DecoderSkeleton(shape);
  f.seq_len = 1;
  BuildTransformer(f, Family::kGpt2, t, Tokens{1, static_cast<double>(context) + 1});
  return f;
}

}  // namespace fluidfaas::model
