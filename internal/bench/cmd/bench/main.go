// Command bench compares queue managers under a private Postfix instance:
// our build, the C oqmgr and the C qmgr of the Debian postfix package. It
// fills message pools once, restores the same queue files for every
// contender, and reports throughput, queue-manager CPU time and peak
// memory. It needs root and the Debian postfix package (`make deps`).
//
//	go run ./internal/bench/cmd/bench -qmgr bin/oqmgr
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"oqmgr-go/internal/bench"
)

func main() {
	qmgr := flag.String("qmgr", "bin/oqmgr", "our queue manager binary")
	out := flag.String("out", "bin/bench", "directory for bench.json and bench.png; the previous bench.json is kept as bench.prev.json")
	rounds := flag.Int("rounds", 3, "rounds per workload; contenders take turns in each round")
	full := flag.Bool("full", false, "use the full sizes (20,000 discard, 5,000 smtp, 1,000 fanout, 100,000 deferred, active limit 20,000) instead of the default ones")
	sizes := flag.String("sizes", "", "comma-separated workload=count overrides, e.g. discard=20000,active=2000")
	only := flag.String("workloads", strings.Join(bench.AllWorkloads, ","), "comma-separated workloads to run")
	contenders := flag.String("contenders", "ours,oqmgr,qmgr", "comma-separated contenders to run, from ours, oqmgr and qmgr")
	timeout := flag.Duration("timeout", 10*time.Minute, "maximum duration of one round of one contender")
	profile := flag.Bool("profile", false, "record our queue manager with perf(1) in the first round of each workload, into the -out directory")
	flag.Parse()

	if err := run(*qmgr, *out, *rounds, *full, *sizes, *only, *contenders, *timeout, *profile); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(qmgr, out string, rounds int, full bool, sizeList, only, contenderList string, timeout time.Duration, profile bool) error {
	qmgr, err := filepath.Abs(qmgr)
	if err != nil {
		return err
	}
	if _, err := os.Stat(qmgr); err != nil {
		return fmt.Errorf("our queue manager binary not found: %w (build it with `make build`)", err)
	}
	sizes := bench.DefaultSizes
	if full {
		sizes = bench.FullSizes
	}
	if err := sizes.ParseSizes(sizeList); err != nil {
		return err
	}
	var picked []bench.Contender
	all := bench.DefaultContenders(qmgr)
	for _, name := range splitList(contenderList) {
		i := indexOf(all, name)
		if i < 0 {
			return fmt.Errorf("unknown contender %q: want ours, oqmgr or qmgr", name)
		}
		picked = append(picked, all[i])
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}

	cfg := bench.Config{
		Contenders: picked,
		Workloads:  splitList(only),
		Sizes:      sizes,
		Rounds:     rounds,
		Timeout:    timeout,
		Out:        os.Stdout,
		Terminal:   isTerminal(os.Stdout),
	}
	if profile {
		cfg.ProfileDir = out
	}
	report, err := bench.Run(cfg)
	if err != nil {
		return err
	}
	report.WriteTable(os.Stdout)

	jsonPath := filepath.Join(out, "bench.json")
	if _, err := os.Stat(jsonPath); err == nil {
		if err := os.Rename(jsonPath, filepath.Join(out, "bench.prev.json")); err != nil {
			return err
		}
	}
	if err := report.WriteJSON(jsonPath); err != nil {
		return err
	}
	pngPath := filepath.Join(out, "bench.png")
	if err := bench.WriteChart(report, pngPath); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s and %s\n", jsonPath, pngPath)
	return nil
}

func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func indexOf(cs []bench.Contender, name string) int {
	for i, c := range cs {
		if c.Name == name {
			return i
		}
	}
	return -1
}

func isTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
