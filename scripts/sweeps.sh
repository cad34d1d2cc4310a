#!/usr/bin/env bash
# SLO hit rate against the number of functions (24 to 192) and against the big-model share of the load (0 to
# 100%), on the serverless preset at medium load, seeds 1-8 (SEEDS=...), for FluidFaaS and the baselines. Writes
# out/eval/sweeps/{functions,share}.dat (means) and .svg/.png (gnuplot), and prints both tables with each mean's
# 95% interval over the seeds (Student's t).
# Usage: [SEEDS=1,2,3,4] scripts/sweeps.sh [OUT_DIR]     (about four minutes on two cores with 8 seeds)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/out/eval/sweeps}"
bin="$root/build/release/fluidfaas"
[[ -x "$bin" ]] || { echo "sweeps: build first (scripts/run.sh --help builds it)" >&2; exit 2; }
mkdir -p "$out"
policies="fluidfaas,esg,infless,exclusive:keep_alive=60s"
small=(resnet50 vit-b16 bert-base bert-large gpt2-xl llama2-7b)

seeds="${SEEDS:-1,2,3,4,5,6,7,8}"

# One point: the mean SLO hit rate per policy over the seeds, as "x rate rate ..." in the policies' order; the
# same with each mean's 95% interval is appended to $out/NAME.txt.
point() {
  local name="$1" x="$2"
  shift 2
  "$bin" sim --preset serverless --load medium --seed "$seeds" --policies "$policies" --json --out "$out/run" "$@" |
    python3 -c '
import json, math, sys
rows = json.load(sys.stdin)
order = sys.argv[2].split(",")
rate = {p: [100 * r["slo_hit_rate"] for r in rows if r["policy"] == p] for p in order}
# Student t, two-sided 95%, by degrees of freedom (beyond 10: 2.2 is within 3% of every value).
t95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
def ci(v):
  if len(v) < 2: return 0.0
  m = sum(v) / len(v)
  sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))
  return t95.get(len(v) - 1, 2.2) * sd / math.sqrt(len(v))
print(sys.argv[1], " ".join("%.4f" % (sum(v) / len(v)) for v in (rate[p] for p in order)))
with open(sys.argv[3], "a") as f:
  print(sys.argv[1], " ".join("%.1f+/-%.1f" % (sum(v) / len(v), ci(v)) for v in (rate[p] for p in order)), file=f)
' "$x" "$policies" "$out/$name.txt"
}

plot() {
  local name="$1" xlabel="$2"
  gnuplot <<EOF || echo "sweeps: gnuplot failed; the data is in $out/$name.dat" >&2
set datafile commentschars "#"
set key bottom left
set grid
set xlabel "$xlabel"
set ylabel "SLO hit rate (%)"
set yrange [0:100]
titles = "$(echo "$policies" | tr ',' ' ')"
do for [t in "svg png"] {
  if (t eq "svg") { set terminal svg size 760,420 noenhanced } else { set terminal pngcairo size 760,420 noenhanced }
  set output "$out/$name.".t
  plot for [i=2:5] "$out/$name.dat" using 1:i with linespoints title word(titles, i-1)
}
EOF
}

rm -f "$out/functions.txt" "$out/share.txt"
{
  echo "# functions $policies"
  for n in 24 48 96 144 192; do point functions "$n" --functions "$n"; done
} >"$out/functions.dat"
plot functions "functions (serverless, medium)"

{
  echo "# big_model_share_percent $policies"
  for share in 0 25 50 75 100; do
    mix=""
    if ((share > 0)); then mix="llama2-13b:$share"; fi
    if ((share < 100)); then
      for m in "${small[@]}"; do mix+="${mix:+,}$m:$(python3 -c "print((100 - $share) / 6)")"; done
    fi
    point share "$share" --mix "$mix"
  done
} >"$out/share.dat"
plot share "llama2-13b share of functions and load, % (serverless, medium)"

rm -rf "$out/run"
for f in functions share; do
  echo "== $f (columns: $policies; mean SLO hit rate % over seeds $seeds, +/- its 95% interval)"
  cat "$out/$f.txt"
done
echo "wrote $out/functions.{dat,svg,png} and $out/share.{dat,svg,png}"
