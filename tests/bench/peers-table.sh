#!/usr/bin/env bash
# The table of tests/bench/peers.sh from its results file (lines
# "scenario<TAB>system<TAB>run<TAB>key<TAB>value"): the median of the runs
# of each figure for each system, and Baby Discord's figure divided by
# each peer's (BD ÷ nchan uses Baby Discord's SSE figure where the
# scenario has one). Markdown on stdout.
#
# usage: tests/bench/peers-table.sh RESULTS.tsv
set -euo pipefail

[[ $# -eq 1 && -r $1 ]] || {
	echo "usage: $0 RESULTS.tsv" >&2
	exit 2
}

awk -F '\t' '
function median(list,    n, v, i, j, t) {
	n = split(list, v, " ")
	for (i = 2; i <= n; i++)	# insertion sort, numbers
		for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
			t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
		}
	if (n == 0)
		return ""
	if (n % 2)
		return v[(n + 1) / 2]
	return (v[n / 2] + v[n / 2 + 1]) / 2
}
function fmt(x) {
	if (x == "")
		return "-"
	if (x + 0 >= 1000)
		return sprintf("%\047d", x + 0.5)
	if (x + 0 >= 100)
		return sprintf("%.0f", x)
	if (x + 0 >= 10)
		return sprintf("%.1f", x)
	return sprintf("%.2f", x)
}
# The median of key k of system s in scenario c, or "".
function med(c, s, k) {
	return ((c, s, k) in vals) ? median(vals[c, s, k]) : ""
}
# "all" when every run joined every client, else "min joined of planned".
function joined(c, s) {
	if (!((c, s, "joined") in minj))
		return ""
	if (minj[c, s, "joined"] >= planned[c, s])
		return ""
	return " (" minj[c, s, "joined"] " of " planned[c, s] " joined)"
}
function ratio(a, b) {
	if (a == "" || b == "" || b + 0 == 0)
		return "-"
	return sprintf("%.2f", a / b)
}
# One row: figure k of scenario c in every column, and the ratios.
function row(c, label, k,    bd, sse, ng, in_, nc, ngs, ins, bd_nc) {
	bd = med(c, "bd", k); sse = med(c, "bdsse", k)
	ng = med(c, "ngircd", k); in_ = med(c, "inspircd", k)
	nc = med(c, "nchan", k)
	ngs = "ngircd"; ins = "inspircd"
	if (ng == "" && med(c, "ngircd+nchan", k) != "") {
		ng = med(c, "ngircd+nchan", k); ngs = "ngircd+nchan"
	}
	if (in_ == "" && med(c, "inspircd+nchan", k) != "") {
		in_ = med(c, "inspircd+nchan", k); ins = "inspircd+nchan"
	}
	if (bd == "" && sse == "" && ng == "" && in_ == "" && nc == "")
		return
	bd_nc = sse != "" ? sse : bd
	printf "| %s | %s | %s%s | %s%s | %s%s | %s%s | %s%s | %s | %s | %s |\n",
		c, label, fmt(bd), k == "setup_s" ? joined(c, "bd") : "",
		fmt(sse), k == "setup_s" ? joined(c, "bdsse") : "",
		fmt(ng), k == "setup_s" ? joined(c, ngs) : "",
		fmt(in_), k == "setup_s" ? joined(c, ins) : "",
		fmt(nc), k == "setup_s" ? joined(c, "nchan") : "",
		ratio(bd, ng), ratio(bd, in_), ratio(bd_nc, nc)
}
{
	c = $1; s = $2; k = $4; v = $5
	if (k == "planned") {
		planned[c, s] = v
		next
	}
	if (k == "joined" && v != "?" && v != "") {
		if (!((c, s, k) in minj) || v + 0 < minj[c, s, k])
			minj[c, s, k] = v + 0
		next
	}
	if (v == "?" || v == "" || v !~ /^-?[0-9.]+$/)
		next
	vals[c, s, k] = vals[c, s, k] " " v
	if (!(c in seen)) {
		seen[c] = 1
		order[++nc_] = c
	}
}
END {
	print "| scenario | figure | Baby Discord | BD SSE | ngircd | InspIRCd | nchan | BD ÷ ngircd | BD ÷ InspIRCd | BD ÷ nchan |"
	print "|---|---|---|---|---|---|---|---|---|---|"
	for (i = 1; i <= nc_; i++) {
		c = order[i]
		if (c == "storm") {
			printf "| storm | all back, s (from the first loss) | %s | | | | | | | |\n", fmt(med(c, "bd", "all_back_s"))
			printf "| storm | caught up, s | %s | | | | | | | |\n", fmt(med(c, "bd", "caught_up_s"))
			printf "| storm | messages missed / doubled (median) | %s / %s | | | | | | | |\n", fmt(med(c, "bd", "lost")), fmt(med(c, "bd", "doubled"))
			printf "| storm | setup of the 3,000, s | %s | | | | | | | |\n", fmt(med(c, "bd", "setup_s"))
			continue
		}
		if (c !~ /^(lat100|flat100|rooms100)$/) {
			row(c, "setup, s", "setup_s")
			row(c, "RSS per connection, KiB", "rss_kb")
		}
		if (c == "lat100") {
			row(c, "latency p50, ms", "p50")
			row(c, "latency p99, ms", "p99")
			f = med(c, "floor", "p50")
			if (f != "")
				printf "| lat100 | commit floor p50, ms (pgbench) | %s | | | | | | | |\n", fmt(f)
		}
		if (c == "flat100" || c == "rooms100")
			row(c, "deliveries/s to receivers", "rx_rate")
	}
}' "$1"
