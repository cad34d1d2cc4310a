#include "model/block.h"

namespace fluidfaas::model {

std::string_view ToString(DType dtype) {
  return dtype == DType::kFp16 ? "fp16" : "fp32";
}

Result<DType> ParseDType(std::string_view text) {
  if (text == "fp16" || text == "float16" || text == "half") return DType::kFp16;
  if (text == "fp32" || text == "float32" || text == "float") return DType::kFp32;
  return Status::InvalidArgument("unknown dtype '" + std::string(text) + "' (expected fp16 or fp32)");
}

std::string_view ToString(BlockKind kind) {
  switch (kind) {
    case BlockKind::kStem: return "stem";
    case BlockKind::kBottleneck: return "bottleneck";
    case BlockKind::kEmbedding: return "embedding";
    case BlockKind::kEncoder: return "encoder";
    case BlockKind::kDecoder: return "decoder";
    case BlockKind::kHead: return "head";
    case BlockKind::kCustom: return "custom";
  }
  return "?";
}

int64_t FunctionSpec::TotalParams() const {
  int64_t total = 0;
  for (const Block& b : blocks) total += b.params;
  return total;
}

double FunctionSpec::TotalMacs() const {
  double total = 0;
  for (const Block& b : blocks) total += b.macs;
  return total;
}

}  // namespace fluidfaas::model
