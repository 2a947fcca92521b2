# Shell helpers shared by bench/compare and bench/ab (sourced, not run).
# shellcheck shell=bash

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port (from $1 up) that nothing listens on, with the $2 ports after it free too.
free_port() {
  local p="$1" span="${2:-0}" i ok
  for ((; p < 65000; p += span + 1)); do
    ok=1
    for ((i = 0; i <= span; i++)); do
      if port_in_use $((p + i)); then ok=0; break; fi
    done
    if ((ok)); then echo "$p"; return 0; fi
  done
  echo "no free loopback port found" >&2
  return 1
}

clk_tck="$(getconf CLK_TCK)"
# CPU seconds (user + system) used so far by the given pids, summed.
cpu_seconds() {
  local pid ticks=0 f
  for pid in "$@"; do
    [[ -r "/proc/$pid/stat" ]] || continue
    # Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
    f="$(sed 's/^.*) //' "/proc/$pid/stat")"
    read -r -a fields <<<"$f"
    ticks=$((ticks + fields[11] + fields[12]))
  done
  awk -v t="$ticks" -v hz="$clk_tck" 'BEGIN { printf "%.2f", t / hz }'
}
