#include "runtime/generative_step.h"

#include <algorithm>
#include <cstring>

namespace fluidfaas::runtime {
namespace {

constexpr uint32_t kMagic = 0x53474646;  // "FFGS"
constexpr uint64_t kMaxItems = uint64_t{1} << 28;

struct Header {
  uint32_t magic = kMagic;
  uint32_t kind = 0;
  uint32_t sequences = 0;
  uint32_t tokens_per_sequence = 0;
  uint64_t tokens = 0;
  uint64_t hidden = 0;
  int64_t hidden_shape[3] = {};
  uint32_t hidden_rank = 0;
  uint32_t reserved = 0;
};

template <typename T>
void Put(std::vector<std::byte>& out, const T* data, size_t n) {
  if (n == 0) return;
  const size_t at = out.size();
  out.resize(at + n * sizeof(T));
  std::memcpy(out.data() + at, data, n * sizeof(T));
}

}  // namespace

std::vector<std::byte> EncodeStep(const GenStepMessage& m) {
  Header h;
  h.kind = static_cast<uint32_t>(m.kind);
  h.sequences = static_cast<uint32_t>(m.sequences.size());
  h.tokens_per_sequence = m.tokens_per_sequence;
  h.tokens = m.tokens.size();
  h.hidden = m.hidden.size();
  h.hidden_rank = static_cast<uint32_t>(std::min<size_t>(m.hidden_shape.size(), 3));
  for (uint32_t i = 0; i < h.hidden_rank; ++i) h.hidden_shape[i] = m.hidden_shape[i];
  std::vector<std::byte> out;
  out.reserve(sizeof h + m.sequences.size() * 8 + m.tokens.size() * 8 + m.hidden.size() * 4 + 4);
  Put(out, &h, 1);
  Put(out, m.sequences.data(), m.sequences.size());
  Put(out, m.tokens.data(), m.tokens.size());
  Put(out, m.hidden.data(), m.hidden.size());
  out.resize((out.size() + 3) / 4 * 4);
  return out;
}

Result<GenStepMessage> DecodeStep(std::span<const std::byte> bytes) {
  Header h;
  if (bytes.size() < sizeof h) return Status::InvalidArgument("generation step: shorter than its header");
  std::memcpy(&h, bytes.data(), sizeof h);
  if (h.magic != kMagic) return Status::InvalidArgument("generation step: not a step message");
  if (h.kind < 1 || h.kind > 3 || h.sequences > kMaxItems || h.tokens > kMaxItems || h.hidden > kMaxItems ||
      h.hidden_rank > 3) {
    return Status::InvalidArgument("generation step: a count out of range");
  }
  const uint64_t need = sizeof h + uint64_t{h.sequences} * 8 + h.tokens * 8 + h.hidden * 4;
  if (bytes.size() < need) return Status::InvalidArgument("generation step: shorter than its counts say");
  GenStepMessage m;
  m.kind = static_cast<GenStepMessage::Kind>(h.kind);
  m.tokens_per_sequence = h.tokens_per_sequence;
  const std::byte* p = bytes.data() + sizeof h;
  const auto take = [&p](auto& out, uint64_t n) {
    out.resize(n);
    if (n > 0) std::memcpy(out.data(), p, n * sizeof(out[0]));  // an empty vector's data() may be null
    p += n * sizeof(out[0]);
  };
  take(m.sequences, h.sequences);
  take(m.tokens, h.tokens);
  take(m.hidden, h.hidden);
  m.hidden_shape.assign(h.hidden_shape, h.hidden_shape + h.hidden_rank);
  uint64_t elems = h.hidden_rank > 0 ? 1 : 0;
  for (int64_t d : m.hidden_shape) elems = d >= 0 ? elems * static_cast<uint64_t>(d) : kMaxItems + 1;
  if (elems != h.hidden) return Status::InvalidArgument("generation step: hidden states and their shape disagree");
  return m;
}

}  // namespace fluidfaas::runtime
