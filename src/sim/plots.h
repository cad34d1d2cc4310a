// Plots of an evaluation grid, drawn with gnuplot (SVG and PNG): SLO hit rate by load, mean latency breakdown,
// throughput, and the CDF of slice utilization. Data and scripts are written beside the images, so a plot can be
// redrawn or restyled by hand.
//
// Thread safety: plain functions; they run gnuplot as a child process.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "sim/experiment.h"

namespace fluidfaas::sim {

// Writes DIR/plots/*.dat and *.gp, then runs gnuplot on each script. Unavailable when gnuplot is not installed
// (the data and scripts are written anyway); IoError when a file cannot be written.
Status WritePlots(const std::string& dir, const std::vector<RunSummary>& runs);

}  // namespace fluidfaas::sim
