package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Report contains every figure of one run. It is written as JSON, so field
// names are part of the file format that later runs compare against.
type Report struct {
	Started    time.Time        `json:"started"`
	Finished   time.Time        `json:"finished"`
	Host       Host             `json:"host"`
	Sizes      Sizes            `json:"sizes"`
	Rounds     int              `json:"rounds"`
	Contenders []Contender      `json:"contenders"`
	Workloads  []WorkloadResult `json:"workloads"`
}

// Host describes the machine a report was measured on.
type Host struct {
	Name      string `json:"name"`
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
}

// WorkloadResult holds one workload's measurements and summaries.
type WorkloadResult struct {
	Name       string `json:"name"`
	Title      string `json:"title"`
	Messages   int    `json:"messages"`
	Recipients int    `json:"recipients_per_message"`
	// ActiveLimit is qmgr_message_active_limit for the active workload,
	// whose throughput counts activated messages, and 0 otherwise.
	ActiveLimit int               `json:"active_limit,omitempty"`
	Results     []ContenderResult `json:"results"`
	Ratios      []Ratio           `json:"ratios"`
}

// ContenderResult holds one contender's rounds of one workload. Best and
// Median cover the rounds without error: best is the highest throughput,
// the lowest CPU time and the lowest peak memory, each taken separately.
type ContenderResult struct {
	Contender string        `json:"contender"`
	Rounds    []Measurement `json:"rounds"`
	Best      *Summary      `json:"best,omitempty"`
	Median    *Summary      `json:"median,omitempty"`
}

// Summary is one set of figures for a contender and workload.
type Summary struct {
	MessagesPerSecond float64 `json:"messages_per_second"`
	CPUPer1000        float64 `json:"cpu_seconds_per_1000_messages"`
	PeakRSSMB         float64 `json:"peak_rss_mb"`
	// QmgrBusy and OtherBusy are the CPU time of the queue manager and of
	// the instance's other processes in percent of the elapsed time, where
	// a machine with n cores offers n*100%. Only medians have them.
	QmgrBusy  float64 `json:"qmgr_busy_percent,omitempty"`
	OtherBusy float64 `json:"other_daemons_busy_percent,omitempty"`
	// QmgrWait is the queue manager's wait for a CPU in percent of the
	// elapsed time, summed over its threads. Only medians have it.
	QmgrWait float64 `json:"qmgr_wait_percent,omitempty"`
	// SinkBusy and MachineBusy are the CPU time of the smtp-sinks and of
	// the whole machine in percent, as QmgrBusy. Only medians have them.
	SinkBusy    float64 `json:"sink_busy_percent,omitempty"`
	MachineBusy float64 `json:"machine_busy_percent,omitempty"`
	// BenchBusy is the benchmark's own part of MachineBusy.
	BenchBusy float64 `json:"bench_busy_percent,omitempty"`
}

// Ratio compares the medians of Ours with those of another contender.
// Throughput above 1 and CPU or memory below 1 favour Ours.
type Ratio struct {
	Versus     string  `json:"versus"`
	Throughput float64 `json:"throughput"`
	CPU        float64 `json:"cpu"`
	Memory     float64 `json:"memory"`
	// Ceiling is the highest throughput ratio the machine's cores allow
	// Ours, or 0 when the machine was not measured. It assumes that the
	// other processes and the kernel spend the same CPU time per message
	// with either queue manager, as they get the same requests, and that
	// every core could be kept busy: see machineCeiling.
	Ceiling float64 `json:"machine_ceiling,omitempty"`
}

func newReport(cfg Config, ws []workload) *Report {
	r := &Report{
		Started:    time.Now(),
		Host:       hostInfo(),
		Sizes:      cfg.Sizes,
		Rounds:     cfg.Rounds,
		Contenders: cfg.Contenders,
	}
	for _, w := range ws {
		res := WorkloadResult{Name: w.name, Title: w.title, Messages: w.messages, Recipients: w.recipients, ActiveLimit: w.activeLimit}
		for _, c := range cfg.Contenders {
			res.Results = append(res.Results, ContenderResult{Contender: c.Name})
		}
		r.Workloads = append(r.Workloads, res)
	}
	return r
}

// add records one round of a contender.
func (res *WorkloadResult) add(contender string, m Measurement) {
	for i := range res.Results {
		if res.Results[i].Contender == contender {
			res.Results[i].Rounds = append(res.Results[i].Rounds, m)
			return
		}
	}
	res.Results = append(res.Results, ContenderResult{Contender: contender, Rounds: []Measurement{m}})
}

// summarize computes Best and Median of every contender and the ratios of
// Ours to the others, on a machine with the given number of cores.
func (res *WorkloadResult) summarize(cores int) {
	for i := range res.Results {
		res.Results[i].Best, res.Results[i].Median = summarizeRounds(res.Results[i].Rounds)
	}
	res.Ratios = nil
	ours := res.result(Ours)
	if ours == nil || ours.Median == nil {
		return
	}
	for _, other := range res.Results {
		if other.Contender == Ours || other.Median == nil {
			continue
		}
		cpu := ratio(ours.Median.CPUPer1000, other.Median.CPUPer1000)
		res.Ratios = append(res.Ratios, Ratio{
			Versus:     other.Contender,
			Throughput: ratio(ours.Median.MessagesPerSecond, other.Median.MessagesPerSecond),
			CPU:        cpu,
			Memory:     ratio(ours.Median.PeakRSSMB, other.Median.PeakRSSMB),
			Ceiling:    machineCeiling(other.Median, cpu, cores),
		})
	}
}

// machineCeiling bounds the throughput of Ours relative to another
// contender by the machine's CPU time. With the other contender the
// machine was MachineBusy percent busy: QmgrBusy of it that contender's,
// BenchBusy the benchmark's polling, which does not grow with the rate,
// and the rest the delivery's other processes and the kernel. At k times
// the rate the rest grows k times, and a queue manager costing cpu times
// as much per message takes k*cpu*QmgrBusy. k cannot pass the point where
// the sum fills every core. The bound is optimistic: it leaves no core
// idle, where in practice the processes of a delivery wait for each other.
func machineCeiling(other *Summary, cpu float64, cores int) float64 {
	if other.MachineBusy == 0 || cpu == 0 {
		return 0
	}
	rest := other.MachineBusy - other.QmgrBusy - other.BenchBusy
	return ratio(float64(100*cores)-other.BenchBusy, rest+cpu*other.QmgrBusy)
}

func (res *WorkloadResult) result(contender string) *ContenderResult {
	for i := range res.Results {
		if res.Results[i].Contender == contender {
			return &res.Results[i]
		}
	}
	return nil
}

// summarizeRounds returns the best and median figures of the rounds
// without error, or nils when every round failed.
func summarizeRounds(rounds []Measurement) (best, median *Summary) {
	var rate, cpu, rss, qmgrBusy, otherBusy, qmgrWait, sinkBusy, machineBusy, benchBusy []float64
	for _, m := range rounds {
		if m.Error != "" {
			continue
		}
		rate = append(rate, m.MessagesPerSecond)
		cpu = append(cpu, m.CPUPer1000)
		rss = append(rss, float64(m.PeakRSSBytes)/(1<<20))
		qmgrBusy = append(qmgrBusy, 100*ratio(m.CPUSeconds, m.Seconds))
		otherBusy = append(otherBusy, 100*ratio(m.OtherCPUSeconds, m.Seconds))
		qmgrWait = append(qmgrWait, 100*ratio(m.QmgrWaitSeconds, m.Seconds))
		sinkBusy = append(sinkBusy, 100*ratio(m.SinkCPUSeconds, m.Seconds))
		machineBusy = append(machineBusy, m.MachineBusyPercent)
		benchBusy = append(benchBusy, m.BenchBusyPercent)
	}
	if len(rate) == 0 {
		return nil, nil
	}
	best = &Summary{MessagesPerSecond: slices.Max(rate), CPUPer1000: slices.Min(cpu), PeakRSSMB: slices.Min(rss)}
	median = &Summary{MessagesPerSecond: medianOf(rate), CPUPer1000: medianOf(cpu), PeakRSSMB: medianOf(rss),
		QmgrBusy: medianOf(qmgrBusy), OtherBusy: medianOf(otherBusy), QmgrWait: medianOf(qmgrWait),
		SinkBusy: medianOf(sinkBusy), MachineBusy: medianOf(machineBusy), BenchBusy: medianOf(benchBusy)}
	return best, median
}

// medianOf returns the median of values, the mean of the middle two for an
// even count.
func medianOf(values []float64) float64 {
	s := slices.Sorted(slices.Values(values))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ratio returns a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// WriteJSON writes the report to path, indented.
func (r *Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// ReadJSON reads a report written by WriteJSON.
func ReadJSON(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("read benchmark report %s: %w", path, err)
	}
	return &r, nil
}

// WriteTable writes the summary table: one line per workload and
// contender with best and median figures, then the ratios of Ours.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "\n%-9s %-6s %6s %18s %20s %16s %18s %5s %8s\n", "workload", "qmgr", "rounds", "msg/s best median", "cpu s/1k best median", "rss MB best med", "busy% q/other/sink", "wait%", "machine%")
	for _, res := range r.Workloads {
		for _, c := range res.Results {
			ok := 0
			for _, m := range c.Rounds {
				if m.Error == "" {
					ok++
				}
			}
			rounds := fmt.Sprintf("%d/%d", ok, len(c.Rounds))
			if c.Best == nil {
				fmt.Fprintf(w, "%-9s %-6s %6s %18s %20s %16s\n", res.Name, c.Contender, rounds, "failed", "-", "-")
				continue
			}
			busy := fmt.Sprintf("%.0f/%.0f/%.0f", c.Median.QmgrBusy, c.Median.OtherBusy, c.Median.SinkBusy)
			fmt.Fprintf(w, "%-9s %-6s %6s %9.0f %8.0f %10.3f %9.3f %8.1f %7.1f %18s %5.0f %8.0f\n", res.Name, c.Contender, rounds,
				c.Best.MessagesPerSecond, c.Median.MessagesPerSecond,
				c.Best.CPUPer1000, c.Median.CPUPer1000,
				c.Best.PeakRSSMB, c.Median.PeakRSSMB,
				busy, c.Median.QmgrWait, c.Median.MachineBusy)
		}
		for _, q := range res.Ratios {
			ceiling := "-"
			if q.Ceiling > 0 {
				ceiling = fmt.Sprintf("x%.2f", q.Ceiling)
			}
			fmt.Fprintf(w, "%-9s %-13s %18s %20s %16s %18s\n", "", "ours/"+q.Versus,
				fmt.Sprintf("x%.2f", q.Throughput), fmt.Sprintf("x%.2f", q.CPU), fmt.Sprintf("x%.2f", q.Memory),
				"ceiling "+ceiling)
		}
	}
	fmt.Fprintln(w, "\nRatios divide medians. Throughput above 1 favours ours; CPU and memory below 1 favour ours.")
	fmt.Fprintf(w, "busy%%: median CPU time of the queue manager, of the other Postfix daemons and of the smtp-sinks per elapsed time (%d cores = %d%%).\n",
		r.Host.CPUs, 100*r.Host.CPUs)
	fmt.Fprintln(w, "wait%: median time the queue manager's threads were ready to run but waited for a CPU, per elapsed time.")
	fmt.Fprintln(w, "machine%: median CPU time of the whole machine, kernel included, per elapsed time; what it lacks of n*100% on n cores, the cores stood idle.")
	fmt.Fprintln(w, "ceiling: the highest throughput ratio the cores allow ours, at its CPU per message, if the rest of the machine")
	fmt.Fprintln(w, "spends what it spent per message with the other contender and no core is ever idle.")
}

// printer writes progress lines, rewriting one line in place on a terminal.
type printer struct {
	w        io.Writer
	terminal bool
	pending  bool // a progress line is on screen without a newline
}

func (p *printer) progress(line string) {
	if p.terminal {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.pending = true
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *printer) linef(format string, a ...any) {
	if p.pending {
		fmt.Fprint(p.w, "\r\033[K")
		p.pending = false
	}
	fmt.Fprintf(p.w, format+"\n", a...)
}

func (p *printer) round(workload string, round int, contender string, m Measurement) {
	if m.Error != "" {
		p.linef("  round %d %-6s FAILED: %s", round, contender, m.Error)
		return
	}
	p.linef("  round %d %-6s %8.0f msg/s %8.3f cpu s/1k %7.1f MB rss  (%.2fs; busy: qmgr %.0f%%, other daemons %.0f%%, sinks %.0f%%, machine %.0f%% of which this benchmark %.0f%%; qmgr waited for a CPU %.0f%%)",
		round, contender, m.MessagesPerSecond, m.CPUPer1000, float64(m.PeakRSSBytes)/(1<<20), m.Seconds,
		100*m.CPUSeconds/m.Seconds, 100*m.OtherCPUSeconds/m.Seconds, 100*m.SinkCPUSeconds/m.Seconds,
		m.MachineBusyPercent, m.BenchBusyPercent, 100*m.QmgrWaitSeconds/m.Seconds)
}

func (p *printer) workload(res *WorkloadResult) {
	for _, q := range res.Ratios {
		line := fmt.Sprintf("  ours/%-6s throughput x%.2f, cpu x%.2f, memory x%.2f", q.Versus, q.Throughput, q.CPU, q.Memory)
		if q.Ceiling > 0 {
			line += fmt.Sprintf("; the cores allow at most x%.2f", q.Ceiling)
		}
		p.linef("%s", line)
	}
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel(cpuinfo []byte) string {
	for line := range strings.Lines(string(cpuinfo)) {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return ""
}
