#include "sim/plots.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

namespace fluidfaas::sim {
namespace {

std::vector<std::string> Unique(const std::vector<RunSummary>& runs, std::string RunSummary::*field) {
  std::vector<std::string> out;
  for (const RunSummary& r : runs) {
    if (std::find(out.begin(), out.end(), r.*field) == out.end()) out.push_back(r.*field);
  }
  return out;
}

const RunSummary* Find(const std::vector<RunSummary>& runs, const std::string& policy, const std::string& load) {
  for (const RunSummary& r : runs) {
    if (r.policy == policy && r.load == load) return &r;
  }
  return nullptr;
}

// One gnuplot script drawing the same plot to SVG and PNG.
std::string Script(const std::string& name, const std::string& body) {
  std::string s;
  for (const char* term : {"svg size 800,480 dynamic background rgb 'white'", "pngcairo size 800,480"}) {
    const std::string ext = std::string(term).rfind("svg", 0) == 0 ? "svg" : "png";
    s.append("set terminal ").append(term).append("\nset output '").append(name).append(".").append(ext);
    s.append("'\n").append(body).append("\nunset output\n");
  }
  return s;
}

}  // namespace

Status WritePlots(const std::string& dir, const std::vector<RunSummary>& runs) {
  const std::string out = dir + "/plots";
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) return Status::IoError("cannot create '" + out + "': " + ec.message());
  const std::vector<std::string> policies = Unique(runs, &RunSummary::policy);
  const std::vector<std::string> loads = Unique(runs, &RunSummary::load);

  // Per load: one column per policy (hit rate, throughput).
  std::ofstream by_load(out + "/by_load.dat");
  by_load << "# load";  // a comment: gnuplot would read a plain header as a first, empty category
  for (const std::string& p : policies) by_load << ' ' << p << "_hit " << p << "_tput";
  by_load << '\n';
  for (const std::string& l : loads) {
    by_load << l;
    for (const std::string& p : policies) {
      const RunSummary* r = Find(runs, p, l);
      by_load << ' ' << (r ? 100 * r->hit_rate : 0) << ' ' << (r ? r->throughput_rps : 0);
    }
    by_load << '\n';
  }
  // Per (policy, load): the latency breakdown.
  std::ofstream breakdown(out + "/breakdown.dat");
  breakdown << "# run queue load compute transfer\n";
  for (const RunSummary& r : runs) {
    breakdown << r.policy << "/" << r.load << ' ' << r.queue_ms << ' ' << r.load_ms << ' ' << r.compute_ms << ' '
              << r.transfer_ms << '\n';
  }
  // Per run: sorted slice utilizations for the CDF (one data block per run).
  std::ofstream cdf(out + "/utilization_cdf.dat");
  for (const RunSummary& r : runs) {
    std::vector<double> u = r.slice_utilization;
    std::sort(u.begin(), u.end());
    cdf << "# " << r.policy << "/" << r.load << '\n';
    for (size_t i = 0; i < u.size(); ++i)
      cdf << u[i] << ' ' << static_cast<double>(i + 1) / static_cast<double>(u.size()) << '\n';
    cdf << "\n\n";
  }

  const std::string histogram =
      "set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
      "set key outside right\nset grid ytics\n";
  std::string hit =
      histogram + "set ylabel 'SLO hit rate (%)'\nset yrange [0:100]\nset title 'SLO hit rate by load'\nplot ";
  std::string tput =
      histogram + "set ylabel 'requests within SLO per second'\nset yrange [0:*]\nset title 'Throughput'\nplot ";
  for (size_t i = 0; i < policies.size(); ++i) {
    const std::string sep = i + 1 < policies.size() ? ", " : "";
    hit += "'by_load.dat' using " + std::to_string(2 + 2 * i) + ":xtic(1) title '" + policies[i] + "'" + sep;
    tput += "'by_load.dat' using " + std::to_string(3 + 2 * i) + ":xtic(1) title '" + policies[i] + "'" + sep;
  }
  const std::string stacked =
      "set style data histograms\nset style histogram rowstacked\nset style fill solid 0.8 border -1\n"
      "set key outside right\nset grid ytics\nset xtics rotate by -30\nset ylabel 'mean latency (ms)'\n"
      "set title 'Latency breakdown'\nplot 'breakdown.dat' using 2:xtic(1) title 'queue', '' using 3 title 'load', "
      "'' using 4 title 'compute', '' using 5 title 'transfer'";
  std::string cdf_plot =
      "set key outside right\nset grid\nset xlabel 'slice utilization'\nset ylabel 'CDF'\n"
      "set xrange [0:1]\nset yrange [0:1]\nset title 'Slice utilization'\nplot ";
  for (size_t i = 0; i < runs.size(); ++i) {
    cdf_plot += "'utilization_cdf.dat' index " + std::to_string(i) + " using 1:2 with steps title '" + runs[i].policy +
                "/" + runs[i].load + "'" + (i + 1 < runs.size() ? ", " : "");
  }
  const std::vector<std::pair<std::string, std::string>> scripts = {
      {"hit_rate", hit}, {"throughput", tput}, {"latency_breakdown", stacked}, {"utilization_cdf", cdf_plot}};
  for (const auto& [name, body] : scripts)
    std::ofstream(std::string(out).append("/").append(name).append(".gp")) << Script(name, body);
  by_load.close();
  breakdown.close();
  cdf.close();  // flushed before gnuplot reads them
  if (!by_load || !breakdown || !cdf) return Status::IoError("cannot write plot data in '" + out + "'");

  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    return Status::Unavailable("gnuplot is not installed: wrote the data and scripts in " + out + " only");
  }
  for (const auto& [name, body] : scripts) {
    const std::string cmd =
        std::string("cd '").append(out).append("' && gnuplot ").append(name).append(".gp 2>/dev/null");
    if (std::system(cmd.c_str()) != 0) {
      return Status::Internal(std::string("gnuplot failed on ").append(out).append("/").append(name).append(".gp"));
    }
  }
  return Status::Ok();
}

}  // namespace fluidfaas::sim
