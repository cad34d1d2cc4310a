#include "model/torch_generative.h"

#include <torch/script.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "common/config.h"
#include "common/limits.h"
#include "model/manifest.h"
#include "model/torch_support.h"

namespace fluidfaas::model {
namespace {

using Kind = GenerativeManifest::Block::Kind;

torch::Tensor Tokens(const std::vector<int64_t>& ids, int64_t rows, int64_t cols) {
  return torch::tensor(ids, torch::kInt64).reshape({rows, cols});
}

std::vector<int64_t> Ids(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kInt64).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

// The example's layer: pre-norm attention over past and new positions, then a GELU MLP, residuals around both.
std::string LayerSource(int heads, int dh) {
  const std::string heads_text = std::to_string(heads), dh_text = std::to_string(dh);
  return R"(
def forward(self, x, past_k, past_v, past_len):
    B = x.size(0)
    T = x.size(1)
    D = x.size(2)
    P = past_k.size(2)
    h = torch.layer_norm(x, [D], self.ln1_w, self.ln1_b)
    q = torch.matmul(h, self.wq.t()).reshape([B, T, )" +
         heads_text + ", " + dh_text + R"(]).transpose(1, 2)
    k = torch.matmul(h, self.wk.t()).reshape([B, T, )" +
         heads_text + ", " + dh_text + R"(]).transpose(1, 2)
    v = torch.matmul(h, self.wv.t()).reshape([B, T, )" +
         heads_text + ", " + dh_text + R"(]).transpose(1, 2)
    keys = torch.cat([past_k, k], 2)
    values = torch.cat([past_v, v], 2)
    scores = torch.matmul(q, keys.transpose(2, 3)) / )" +
         std::to_string(std::sqrt(static_cast<double>(dh))) + R"(
    j = torch.arange(P + T)
    t = torch.arange(T)
    past_ok = j.unsqueeze(0) < past_len.unsqueeze(1)
    new_ok = (j.unsqueeze(0) - P) <= t.unsqueeze(1)
    is_past = (j < P).unsqueeze(0).unsqueeze(0)
    mask = torch.where(is_past, past_ok.unsqueeze(1), new_ok.unsqueeze(0))
    scores = scores.masked_fill(torch.logical_not(mask.unsqueeze(1)), -1e30)
    o = torch.matmul(torch.softmax(scores, -1), values).transpose(1, 2).reshape([B, T, D])
    x = x + torch.matmul(o, self.wo.t())
    h2 = torch.layer_norm(x, [D], self.ln2_w, self.ln2_b)
    x = x + torch.matmul(torch.gelu(torch.matmul(h2, self.w1.t())), self.w2.t())
    return x, k, v
)";
}

}  // namespace

Status WriteGenerativeExample(const std::string& dir, bool force) {
  std::error_code ec;
  if (!force && std::filesystem::exists(dir, ec) && !std::filesystem::is_empty(dir, ec)) {
    return Status::AlreadyExists("'" + dir + "' exists and is not empty (--force writes into it anyway)");
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create '" + dir + "': " + ec.message());
  constexpr int kVocab = 256, kD = 32, kHeads = 4, kLayers = 4, kPositions = 256, kHidden = 64;
  const auto path = [&](const std::string& f) { return (std::filesystem::path(dir) / f).string(); };
  try {
    torch::manual_seed(2026);
    torch::jit::Module embed("embed");
    embed.register_parameter("tok", torch::randn({kVocab, kD}) * 0.5, false);
    embed.register_parameter("pos", torch::randn({kPositions, kD}) * 0.1, false);
    embed.define(R"(
def forward(self, tokens, start):
    positions = start.unsqueeze(1) + torch.arange(tokens.size(1)).unsqueeze(0)
    return torch.embedding(self.tok, tokens) + torch.embedding(self.pos, positions)
)");
    embed.save(path("embed.pt"));
    for (int l = 0; l < kLayers; ++l) {
      torch::jit::Module layer("layer");
      const float s = 1.0F / std::sqrt(static_cast<float>(kD));
      for (const char* w : {"wq", "wk", "wv", "wo"}) layer.register_parameter(w, torch::randn({kD, kD}) * s, false);
      layer.register_parameter("w1", torch::randn({kHidden, kD}) * s, false);
      layer.register_parameter("w2", torch::randn({kD, kHidden}) * (1.0F / std::sqrt(static_cast<float>(kHidden))),
                               false);
      for (const char* n : {"ln1", "ln2"}) {
        layer.register_parameter(std::string(n) + "_w", torch::ones({kD}), false);
        layer.register_parameter(std::string(n) + "_b", torch::zeros({kD}), false);
      }
      layer.define(LayerSource(kHeads, kD / kHeads));
      layer.save(path("layer" + std::to_string(l) + ".pt"));
    }
    torch::jit::Module head("head");
    head.register_parameter("ln_w", torch::ones({kD}), false);
    head.register_parameter("ln_b", torch::zeros({kD}), false);
    head.register_parameter("out", torch::randn({kVocab, kD}), false);
    head.define(R"(
def forward(self, x):
    h = torch.layer_norm(x[:, -1], [x.size(2)], self.ln_w, self.ln_b)
    return torch.argmax(torch.matmul(h, self.out.t()), -1)
)");
    head.save(path("head.pt"));
  } catch (const std::exception& e) {
    return Status::IoError("cannot write the example's blocks into '" + dir + "': " + TorchMessage(e));
  }
  std::ofstream manifest(path("manifest.yaml"));
  manifest << "# A generative FluidFaaS function: a byte-level decoder whose layers carry their KV caches.\n"
              "name: tiny-gpt\nkind: generative\nvocab: "
           << kVocab << "\nd_model: " << kD << "\nheads: " << kHeads << "\nffn: " << kHidden
           << "\nmax_positions: " << kPositions << "\nblocks:\n  - {name: embed, file: embed.pt, kind: embed}\n";
  for (int l = 0; l < kLayers; ++l) {
    manifest << "  - {name: layer" << l << ", file: layer" << l << ".pt, kind: layer}\n";
  }
  manifest << "  - {name: head, file: head.pt, kind: head}\n";
  if (!manifest) return Status::IoError("cannot write '" + path("manifest.yaml") + "'");
  return Status::Ok();
}

// ------------------------------------------------------------------------------------------------- the stage

struct GenerativeStage::Impl {
  GenerativeManifest manifest;
  size_t first = 0, last = 0;
  std::vector<torch::jit::Module> modules;  // blocks first..last
  int page_tokens = 16;
  int64_t pages = 0;
  int dh = 0;
  // Per layer of this stage: its pages of keys and of values, [pages, heads, page_tokens, dh].
  std::vector<torch::Tensor> k_pool, v_pool;
  std::vector<int64_t> free;  // free page numbers (shared by the stage's layers: a page holds a token range)
  struct Sequence {
    std::vector<int64_t> pages;
    int64_t length = 0;  // tokens cached
  };
  std::map<uint64_t, Sequence> seqs;

  size_t Layers() const { return k_pool.size(); }
  bool HasEmbed() const { return manifest.blocks[first].kind == Kind::kEmbed; }
  bool HasHead() const { return manifest.blocks[last].kind == Kind::kHead; }

  // Pages for `seq` to hold `tokens` in all.
  Status Reserve(Sequence& s, int64_t tokens) {
    const int64_t need = (tokens + page_tokens - 1) / page_tokens - static_cast<int64_t>(s.pages.size());
    if (need > static_cast<int64_t>(free.size())) {
      return Status::ResourceExhausted("the stage's KV pool has " + std::to_string(free.size()) + " free pages, " +
                                       std::to_string(need) + " needed");
    }
    for (int64_t i = 0; i < need; ++i) {
      s.pages.push_back(free.back());
      free.pop_back();
    }
    return Status::Ok();
  }

  // The cached keys (or values) of `s` in layer pool `pool`, [heads, length, dh], padded to `width` tokens.
  torch::Tensor Gather(const torch::Tensor& pool, const Sequence& s, int64_t width) const {
    const int heads = manifest.heads;
    if (s.length == 0) return torch::zeros({heads, width, dh});
    torch::Tensor held = pool.index_select(0, torch::tensor(s.pages, torch::kInt64));  // [n, H, page, dh]
    torch::Tensor flat = held.permute({1, 0, 2, 3}).reshape({heads, -1, dh}).slice(1, 0, s.length);
    if (width > s.length) flat = torch::cat({flat, torch::zeros({heads, width - s.length, dh})}, 1);
    return flat;
  }

  // Writes `fresh` ([heads, T, dh]) into `pool` at token positions `s.length`...
  void Scatter(torch::Tensor& pool, const Sequence& s, const torch::Tensor& fresh) const {
    for (int64_t t = 0; t < fresh.size(1); ++t) {
      const int64_t at = s.length + t;
      pool[s.pages[static_cast<size_t>(at / page_tokens)]].select(1, at % page_tokens).copy_(fresh.select(1, t));
    }
  }

  // Runs the stage's blocks on a batch whose sequences each add `t` tokens.
  Result<StageData> Run(const std::vector<uint64_t>& ids, const StageData& in, int64_t t) {
    const auto batch = static_cast<int64_t>(ids.size());
    std::vector<Sequence*> ss;
    for (uint64_t id : ids) {
      auto it = seqs.find(id);
      if (it == seqs.end()) return Status::NotFound("sequence " + std::to_string(id) + " is not in this stage");
      if (it->second.length + t > manifest.max_positions) {
        return Status::InvalidArgument("sequence " + std::to_string(id) + " would pass the model's " +
                                       std::to_string(manifest.max_positions) + " positions");
      }
      ss.push_back(&it->second);
    }
    if (Layers() > 0) {
      for (Sequence* s : ss) FF_RETURN_IF_ERROR(Reserve(*s, s->length + t));
    }
    try {
      torch::NoGradGuard no_grad;
      torch::Tensor x;
      if (HasEmbed()) {
        if (static_cast<int64_t>(in.tokens.size()) != batch * t) return Status::InvalidArgument("token count");
        std::vector<int64_t> start;
        for (const Sequence* s : ss) start.push_back(s->length);
        x = modules[0].forward({Tokens(in.tokens, batch, t), torch::tensor(start, torch::kInt64)}).toTensor();
      } else {
        x = ToTorch(in.hidden);
        if (x.dim() != 3 || x.size(0) != batch || x.size(1) != t || x.size(2) != manifest.d_model) {
          return Status::InvalidArgument("hidden states of the wrong shape for this stage");
        }
      }
      int64_t width = 0;
      std::vector<int64_t> lengths;
      for (const Sequence* s : ss) {
        width = std::max(width, s->length);
        lengths.push_back(s->length);
      }
      const torch::Tensor past_len = torch::tensor(lengths, torch::kInt64);
      size_t layer = 0;
      for (size_t b = HasEmbed() ? 1 : 0; b < modules.size(); ++b) {
        if (manifest.blocks[first + b].kind == Kind::kHead) {
          for (Sequence* s : ss) s->length += t;
          return StageData{.tokens = Ids(modules[b].forward({x}).toTensor())};
        }
        std::vector<torch::Tensor> pk, pv;
        for (const Sequence* s : ss) {
          pk.push_back(Gather(k_pool[layer], *s, width));
          pv.push_back(Gather(v_pool[layer], *s, width));
        }
        const auto out = modules[b].forward({x, torch::stack(pk), torch::stack(pv), past_len}).toTuple();
        x = out->elements()[0].toTensor();
        const torch::Tensor k = out->elements()[1].toTensor(), v = out->elements()[2].toTensor();
        for (int64_t i = 0; i < batch; ++i) {
          Scatter(k_pool[layer], *ss[static_cast<size_t>(i)], k[i]);
          Scatter(v_pool[layer], *ss[static_cast<size_t>(i)], v[i]);
        }
        ++layer;
      }
      for (Sequence* s : ss) s->length += t;
      return StageData{.hidden = FromTorch(x)};
    } catch (const std::exception& e) {
      return Status::InvalidArgument("stage blocks " + std::to_string(first) + ".." + std::to_string(last) + ": " +
                                     TorchMessage(e));
    }
  }
};

GenerativeStage::GenerativeStage(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GenerativeStage::~GenerativeStage() = default;

Result<std::unique_ptr<GenerativeStage>> GenerativeStage::Load(const std::string& dir, size_t first, size_t last,
                                                               int64_t pages, int page_tokens) {
  auto impl = std::make_unique<Impl>();
  FF_ASSIGN_OR_RETURN(impl->manifest, ReadGenerativeManifest(dir));
  const GenerativeManifest& m = impl->manifest;
  if (first > last || last >= m.blocks.size()) {
    return Status::InvalidArgument("blocks " + std::to_string(first) + ".." + std::to_string(last) + " of " +
                                   std::to_string(m.blocks.size()));
  }
  FF_RETURN_IF_ERROR(CheckRange("pages", pages, 1, int64_t{1} << 24));
  FF_RETURN_IF_ERROR(CheckRange("page_tokens", int64_t{page_tokens}, 1, 4096));
  impl->first = first;
  impl->last = last;
  impl->pages = pages;
  impl->page_tokens = page_tokens;
  impl->dh = m.d_model / m.heads;
  for (size_t b = first; b <= last; ++b) {
    const std::string file = (std::filesystem::path(dir) / m.blocks[b].file).string();
    try {
      impl->modules.push_back(torch::jit::load(file));
      impl->modules.back().eval();
    } catch (const std::exception& e) {
      return Status::InvalidArgument(file + ": not a loadable TorchScript file: " + TorchMessage(e));
    }
    if (m.blocks[b].kind == Kind::kLayer) {
      impl->k_pool.push_back(torch::zeros({pages, m.heads, page_tokens, impl->dh}));
      impl->v_pool.push_back(torch::zeros({pages, m.heads, page_tokens, impl->dh}));
    }
  }
  for (int64_t p = pages - 1; p >= 0; --p) impl->free.push_back(p);
  return std::unique_ptr<GenerativeStage>(new GenerativeStage(std::move(impl)));
}

Result<StageData> GenerativeStage::Prefill(uint64_t seq, const StageData& in) {
  if (impl_->seqs.contains(seq)) return Status::AlreadyExists("sequence " + std::to_string(seq) + " is prefilled");
  const int64_t t = impl_->HasEmbed() ? static_cast<int64_t>(in.tokens.size())
                                      : (in.hidden.shape.size() == 3 ? in.hidden.shape[1] : 0);
  if (t < 1) return Status::InvalidArgument("a prefill of no tokens");
  impl_->seqs.emplace(seq, Impl::Sequence{});
  Result<StageData> out = impl_->Run({seq}, in, t);
  if (!out.ok()) Free(seq);
  return out;
}

Result<StageData> GenerativeStage::Decode(const std::vector<uint64_t>& seqs, const StageData& in) {
  if (seqs.empty()) return Status::InvalidArgument("a decode step of no sequence");
  return impl_->Run(seqs, in, 1);
}

void GenerativeStage::Free(uint64_t seq) {
  auto it = impl_->seqs.find(seq);
  if (it == impl_->seqs.end()) return;
  for (int64_t p : it->second.pages) impl_->free.push_back(p);
  impl_->seqs.erase(it);
}

int64_t GenerativeStage::free_pages() const {
  return static_cast<int64_t>(impl_->free.size());
}

size_t GenerativeStage::sequences() const {
  return impl_->seqs.size();
}

const GenerativeManifest& GenerativeStage::manifest() const {
  return impl_->manifest;
}

Result<std::vector<int64_t>> GenerateWithoutCache(const std::string& dir, const std::vector<int64_t>& prompt,
                                                  int count) {
  FF_ASSIGN_OR_RETURN(const GenerativeManifest m, ReadGenerativeManifest(dir));
  if (prompt.empty() || count < 1 || static_cast<int64_t>(prompt.size()) + count > m.max_positions) {
    return Status::InvalidArgument("a prompt of 1 or more tokens and 1 or more to generate, within the positions");
  }
  std::vector<int64_t> tokens = prompt, out;
  try {
    torch::NoGradGuard no_grad;
    std::vector<torch::jit::Module> blocks;
    for (const auto& b : m.blocks) {
      const std::string file = (std::filesystem::path(dir) / b.file).string();
      try {
        blocks.push_back(torch::jit::load(file));
      } catch (const std::exception& e) {
        return Status::InvalidArgument(file + ": not a loadable TorchScript file: " + TorchMessage(e));
      }
    }
    const int dh = m.d_model / m.heads;
    for (int i = 0; i < count; ++i) {
      const auto t = static_cast<int64_t>(tokens.size());
      torch::Tensor x = blocks[0].forward({Tokens(tokens, 1, t), torch::zeros({1}, torch::kInt64)}).toTensor();
      const torch::Tensor none = torch::zeros({1, m.heads, 0, dh});
      for (size_t b = 1; b + 1 < blocks.size(); ++b) {
        x = blocks[b].forward({x, none, none, torch::zeros({1}, torch::kInt64)}).toTuple()->elements()[0].toTensor();
      }
      const int64_t next = Ids(blocks.back().forward({x}).toTensor()).at(0);
      out.push_back(next);
      tokens.push_back(next);
    }
  } catch (const std::exception& e) {
    return Status::InvalidArgument(dir + ": " + TorchMessage(e));
  }
  return out;
}

}  // namespace fluidfaas::model
