package bench

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"oqmgr-go/internal/testbed"
)

// Contender names. Ratios compare Ours with each of the others.
const (
	Ours  = "ours"
	OQmgr = "oqmgr"
	NQmgr = "qmgr"
)

// Contender is one queue manager binary under test.
type Contender struct {
	Name   string `json:"name"`
	Binary string `json:"binary"`
}

// DefaultContenders are our build and the two queue managers of the Debian
// postfix package: oqmgr, the old one we reimplement, and qmgr (nqmgr).
func DefaultContenders(ours string) []Contender {
	return []Contender{
		{Name: Ours, Binary: ours},
		{Name: OQmgr, Binary: "/usr/lib/postfix/sbin/oqmgr"},
		{Name: NQmgr, Binary: "/usr/lib/postfix/sbin/qmgr"},
	}
}

// Config describes one benchmark run.
type Config struct {
	Contenders []Contender
	Workloads  []string // names, in AllWorkloads if empty
	Sizes      Sizes
	Rounds     int
	// Timeout bounds one round of one contender.
	Timeout time.Duration
	// ProfileDir, when set, receives a perf.data file and a flat profile of
	// Ours for each workload, recorded in the first round.
	ProfileDir string
	// Out receives progress and the table.
	Out io.Writer
	// Terminal rewrites one progress line in place instead of printing
	// one line per update.
	Terminal bool
}

// Run fills the message pools, runs every workload for every contender and
// returns the report. A contender that fails a round gets the error in that
// round's Measurement. Run itself returns an error for invalid
// configuration and when pools, archives, sinks or instances cannot be set
// up.
func Run(cfg Config) (*Report, error) {
	if cfg.Rounds < 1 {
		return nil, fmt.Errorf("invalid number of rounds %d: want at least 1", cfg.Rounds)
	}
	if len(cfg.Contenders) == 0 {
		return nil, errors.New("no contenders")
	}
	for _, c := range cfg.Contenders {
		if _, err := os.Stat(c.Binary); err != nil {
			return nil, fmt.Errorf("contender %s: %w", c.Name, err)
		}
	}
	names := cfg.Workloads
	if len(names) == 0 {
		names = AllWorkloads
	}
	ws, err := workloads(names, cfg.Sizes)
	if err != nil {
		return nil, err
	}
	if err := testbed.CheckEnvironment(); err != nil {
		return nil, err
	}
	p := &printer{w: cfg.Out, terminal: cfg.Terminal}

	work, err := os.MkdirTemp("", "oqmgr-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	pools, err := fillPools(work, ws, p)
	if err != nil {
		return nil, err
	}

	report := newReport(cfg, ws)
	for i, w := range ws {
		p.linef("\n%s: %d %s", w.name, w.messages, w.title)
		archive := filepath.Join(work, "archive-"+w.name)
		if err := prepareArchive(archive, pools[w.pool], w); err != nil {
			return nil, err
		}
		if err := runWorkload(cfg, w, archive, &report.Workloads[i], p); err != nil {
			return nil, err
		}
		if err := os.RemoveAll(archive); err != nil {
			return nil, err
		}
		report.Workloads[i].summarize(report.Host.CPUs)
		p.workload(&report.Workloads[i])
	}
	report.Finished = time.Now()
	return report, nil
}

// fillPools fills each message pool the workloads use, large enough for
// the largest of them, and returns the pool directories by name.
func fillPools(work string, ws []workload, p *printer) (map[string]string, error) {
	need := map[string]int{}
	for _, w := range ws {
		need[w.pool] = max(need[w.pool], w.messages)
	}
	pools := map[string]string{}
	for _, pool := range []string{poolSingle, poolFanout} {
		count, ok := need[pool]
		if !ok {
			continue
		}
		next := singleEnvelope
		if pool == poolFanout {
			next = fanoutEnvelope
		}
		dir := filepath.Join(work, "pool-"+pool)
		start := time.Now()
		err := fillPool(dir, count, next, func(done int) {
			p.progress(fmt.Sprintf("filling the %s pool: %d/%d messages", pool, done, count))
		})
		if err != nil {
			return nil, err
		}
		p.linef("filled the %s pool: %d messages through smtpd in %.1fs", pool, count, time.Since(start).Seconds())
		pools[pool] = dir
	}
	return pools, nil
}

// runWorkload creates one instance per contender, runs the rounds with the
// contenders in a rotating order, and records every measurement in res.
func runWorkload(cfg Config, w workload, archive string, res *WorkloadResult, p *printer) error {
	var ports, sinkPids []int
	for _, args := range w.sinkArgs() {
		sink, err := testbed.StartSinkProcess(args...)
		if err != nil {
			return err
		}
		defer sink.Stop()
		ports = append(ports, sink.Port)
		sinkPids = append(sinkPids, sink.Pid())
	}
	relay := 0
	if len(ports) > 0 {
		relay = ports[0]
	}

	// Instances of the tmpfs workloads live in /dev/shm, because the test
	// bed puts every instance below os.TempDir().
	//
	// NOTE: the test bed's lock on /etc/postfix/main.cf lives in that base
	// directory too, so registering a /dev/shm instance does not exclude a
	// test registering a /tmp instance at the same moment, and one of the
	// two appends to alternate_config_directories can be lost.
	if w.tmpfs {
		restoreTmp := setTempDir("/dev/shm")
		defer restoreTmp()
	}
	instances := make([]*testbed.Instance, len(cfg.Contenders))
	for i, c := range cfg.Contenders {
		inst, err := testbed.Create(testbed.Options{QmgrBinary: c.Binary, MainCF: w.mainCF(ports), RelayPort: relay})
		if err != nil {
			return fmt.Errorf("%s instance for %s: %w", w.name, c.Name, err)
		}
		defer inst.Close(false)
		// postfix start creates the queue directories that restore fills.
		if err := inst.Start(); err != nil {
			return err
		}
		if err := inst.Stop(); err != nil {
			return err
		}
		instances[i] = inst
	}

	for round := 1; round <= cfg.Rounds; round++ {
		for k := range cfg.Contenders {
			i := (k + round - 1) % len(cfg.Contenders)
			c := cfg.Contenders[i]
			spec := roundSpec{
				w:        w,
				archive:  archive,
				sinkPids: sinkPids,
				timeout:  cfg.Timeout,
				progress: func(line string) {
					p.progress(fmt.Sprintf("  %s round %d/%d %-6s %s", w.name, round, cfg.Rounds, c.Name, line))
				},
			}
			if cfg.ProfileDir != "" && c.Name == Ours && round == 1 {
				spec.profile = filepath.Join(cfg.ProfileDir, "perf-"+w.name+".data")
			}
			m := runRound(instances[i], spec)
			m.Round = round
			res.add(c.Name, m)
			p.round(w.name, round, c.Name, m)
			if spec.profile != "" && m.Error == "" {
				if err := perfReport(spec.profile, filepath.Join(cfg.ProfileDir, "profile-"+w.name+".txt")); err != nil {
					p.linef("  %v", err)
				}
			}
		}
	}
	return nil
}

// setTempDir points os.TempDir at dir and returns a function that undoes
// it.
func setTempDir(dir string) func() {
	old, had := os.LookupEnv("TMPDIR")
	os.Setenv("TMPDIR", dir)
	return func() {
		if had {
			os.Setenv("TMPDIR", old)
		} else {
			os.Unsetenv("TMPDIR")
		}
	}
}

// hostInfo describes the machine for the report.
func hostInfo() Host {
	h := Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	h.Name, _ = os.Hostname()
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = string(trimNewline(data))
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		h.CPUModel = cpuModel(data)
	}
	return h
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// contenderIndex returns the position of name in cs, or -1.
func contenderIndex(cs []Contender, name string) int {
	return slices.IndexFunc(cs, func(c Contender) bool { return c.Name == name })
}
