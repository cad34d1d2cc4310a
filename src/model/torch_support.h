// What the LibTorch users share (torchscript.cc, torch_generative.cc, the worker's executors): an error's message
// for people, and HostTensor to and from torch::Tensor. Include only from files that link LibTorch.
#pragma once

#include <torch/script.h>

#include <exception>
#include <string>

#include "model/torchscript.h"

namespace fluidfaas::model {

// What a LibTorch error says, without its C++ backtrace. An error inside the TorchScript interpreter reads
// "The following operation failed in the TorchScript interpreter. Traceback ...: RuntimeError: <cause>": the
// cause is what a function author needs, so it comes first.
inline std::string TorchMessage(const std::exception& e) {
  const auto* c10 = dynamic_cast<const c10::Error*>(&e);
  const std::string what = c10 != nullptr ? c10->what_without_backtrace() : e.what();
  const std::string first = what.substr(0, what.find('\n'));
  for (const char* marker : {"RuntimeError: ", "Error: "}) {
    const size_t at = what.rfind(marker);
    if (at != std::string::npos && what.find("TorchScript interpreter") != std::string::npos) {
      std::string cause = what.substr(at);
      cause = cause.substr(0, cause.find('\n'));
      return cause + " (" + first + ")";
    }
  }
  return first;
}

// A copy of `t` as an fp32 tensor.
inline torch::Tensor ToTorch(const HostTensor& t) {
  return torch::from_blob(const_cast<float*>(t.data.data()), t.shape, torch::kFloat32).clone();
}

inline HostTensor FromTorch(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kFloat32).contiguous();
  HostTensor out;
  out.shape.assign(c.sizes().begin(), c.sizes().end());
  out.data.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return out;
}

}  // namespace fluidfaas::model
