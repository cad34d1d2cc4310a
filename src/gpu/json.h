// JSON views of the MIG model, for the CLI's --json output and the HTTP API (nlohmann::json ADL converters).
//
// Thread safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include "gpu/topology.h"

namespace fluidfaas::gpu {

// {"id":19,"name":"1g.10gb","sm_slices":1,"memory_slices":1,"memory_mib":9856,"sms":14,
//  "placements":[0,1,2,3,4,5,6],"max_count":7,"media_extensions":false}
void to_json(nlohmann::json& j, const MigProfile& p);
// {"profile":"4g.40gb","start":0}
void to_json(nlohmann::json& j, const PlacedSlice& s);
// {"slices":[{"profile":"4g.40gb","start":0}, ...]}
void to_json(nlohmann::json& j, const Layout& layout);
void to_json(nlohmann::json& j, const Slice& s);
void to_json(nlohmann::json& j, const GpuInfo& g);
void to_json(nlohmann::json& j, const NodeTopology& node);

}  // namespace fluidfaas::gpu
