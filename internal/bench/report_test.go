package bench

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSummarizeRounds(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		name       string
		rounds     []Measurement
		wantBest   *Summary
		wantMedian *Summary
	}{
		{
			name: "odd count",
			rounds: []Measurement{
				{MessagesPerSecond: 3000, CPUPer1000: 0.10, PeakRSSBytes: 9 * mb, Seconds: 2, CPUSeconds: 1, OtherCPUSeconds: 2, SinkCPUSeconds: 0.2, MachineBusyPercent: 190, BenchBusyPercent: 3},
				{MessagesPerSecond: 4000, CPUPer1000: 0.12, PeakRSSBytes: 8 * mb, Seconds: 2, CPUSeconds: 0.5, OtherCPUSeconds: 3, SinkCPUSeconds: 0.6, MachineBusyPercent: 150, BenchBusyPercent: 1},
				{MessagesPerSecond: 3500, CPUPer1000: 0.08, PeakRSSBytes: 10 * mb, Seconds: 4, CPUSeconds: 3, OtherCPUSeconds: 2, SinkCPUSeconds: 1.6, MachineBusyPercent: 170, BenchBusyPercent: 2},
			},
			wantBest:   &Summary{MessagesPerSecond: 4000, CPUPer1000: 0.08, PeakRSSMB: 8},
			wantMedian: &Summary{MessagesPerSecond: 3500, CPUPer1000: 0.10, PeakRSSMB: 9, QmgrBusy: 50, OtherBusy: 100, SinkBusy: 30, MachineBusy: 170, BenchBusy: 2},
		},
		{
			name: "even count takes the mean of the middle two",
			rounds: []Measurement{
				{MessagesPerSecond: 100, CPUPer1000: 1, PeakRSSBytes: 4 * mb},
				{MessagesPerSecond: 300, CPUPer1000: 3, PeakRSSBytes: 8 * mb},
			},
			wantBest:   &Summary{MessagesPerSecond: 300, CPUPer1000: 1, PeakRSSMB: 4},
			wantMedian: &Summary{MessagesPerSecond: 200, CPUPer1000: 2, PeakRSSMB: 6},
		},
		{
			name: "failed rounds are left out",
			rounds: []Measurement{
				{MessagesPerSecond: 9999, CPUPer1000: 0.01, PeakRSSBytes: 1 * mb, Error: "timed out"},
				{MessagesPerSecond: 500, CPUPer1000: 0.5, PeakRSSBytes: 5 * mb},
			},
			wantBest:   &Summary{MessagesPerSecond: 500, CPUPer1000: 0.5, PeakRSSMB: 5},
			wantMedian: &Summary{MessagesPerSecond: 500, CPUPer1000: 0.5, PeakRSSMB: 5},
		},
		{
			name:   "every round failed",
			rounds: []Measurement{{Error: "timed out"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			best, median := summarizeRounds(tt.rounds)
			assert.Equal(t, tt.wantBest, best, "best")
			assert.Equal(t, tt.wantMedian, median, "median")
		})
	}
}

// sampleReport returns a report of two workloads in which ours has twice
// the throughput, half the CPU time and 1.5 times the memory of oqmgr.
func sampleReport() *Report {
	r := &Report{Rounds: 1, Host: Host{CPUs: 2}, Contenders: DefaultContenders("/bin/oqmgr")}
	for _, name := range []string{Discard, Fanout} {
		res := WorkloadResult{Name: name}
		res.add(Ours, Measurement{Round: 1, MessagesPerSecond: 4000, CPUPer1000: 0.05, PeakRSSBytes: 12 << 20, Seconds: 1, CPUSeconds: 0.2, OtherCPUSeconds: 1.1, QmgrWaitSeconds: 0.3, SinkCPUSeconds: 0.25, MachineBusyPercent: 171})
		res.add(OQmgr, Measurement{Round: 1, MessagesPerSecond: 2000, CPUPer1000: 0.10, PeakRSSBytes: 8 << 20, Seconds: 2, CPUSeconds: 0.4, OtherCPUSeconds: 1.5, QmgrWaitSeconds: 0.2, MachineBusyPercent: 98})
		res.add(NQmgr, Measurement{Round: 1, Error: "delivered 3 of 5 recipients"})
		res.summarize(r.Host.CPUs)
		r.Workloads = append(r.Workloads, res)
	}
	return r
}

func TestWorkloadResult_Ratios(t *testing.T) {
	r := sampleReport()
	require.Len(t, r.Workloads[0].Ratios, 1, "no ratio against a contender whose rounds all failed")
	got := r.Workloads[0].Ratios[0]
	// oqmgr: machine 98% busy, 20% of it the queue manager's; ours at half
	// its CPU per message: 200 / (98 - 20 + 0.5*20).
	assert.InDelta(t, 200.0/88, got.Ceiling, 1e-9)
	got.Ceiling = 0
	assert.Equal(t, Ratio{Versus: OQmgr, Throughput: 2, CPU: 0.5, Memory: 1.5}, got)
}

func TestMachineCeiling(t *testing.T) {
	tests := []struct {
		name  string
		other Summary
		cpu   float64
		cores int
		want  float64
	}{
		// The smtp workload of 2026-12-05: the rest of the machine took
		// 161% with the C oqmgr, so even a queue manager as cheap as it
		// reaches only 200/184 of its rate on two cores.
		{name: "saturated machine, same CPU", other: Summary{QmgrBusy: 23, MachineBusy: 184}, cpu: 1, cores: 2, want: 200.0 / 184},
		{name: "costlier queue manager", other: Summary{QmgrBusy: 23, MachineBusy: 184}, cpu: 2, cores: 2, want: 200.0 / 207},
		{name: "idle machine leaves room", other: Summary{QmgrBusy: 60, MachineBusy: 140}, cpu: 1, cores: 2, want: 200.0 / 140},
		{name: "more cores", other: Summary{QmgrBusy: 60, MachineBusy: 140}, cpu: 1, cores: 4, want: 400.0 / 140},
		// The benchmark's 4% stays 4% at any rate.
		{name: "benchmark polling", other: Summary{QmgrBusy: 23, MachineBusy: 184, BenchBusy: 4}, cpu: 1, cores: 2, want: 196.0 / 180},
		{name: "machine not measured", other: Summary{QmgrBusy: 60}, cpu: 1, cores: 2, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, tt.want, machineCeiling(&tt.other, tt.cpu, tt.cores), 1e-9)
		})
	}
}

func TestReport_WriteTable(t *testing.T) {
	var buf bytes.Buffer
	sampleReport().WriteTable(&buf)
	out := buf.String()
	assert.Contains(t, out, "discard   ours      1/1      4000     4000      0.050     0.050     12.0    12.0          20/110/25    30      171")
	assert.Contains(t, out, "discard   oqmgr     1/1      2000     2000      0.100     0.100      8.0     8.0            20/75/0    10       98")
	assert.Contains(t, out, "(2 cores = 200%)")
	assert.Contains(t, out, "discard   qmgr      0/1             failed")
	assert.Contains(t, out, "ours/oqmgr                 x2.00                x0.50            x1.50      ceiling x2.27")
}

func TestReport_JSONRoundTrip(t *testing.T) {
	r := sampleReport()
	path := filepath.Join(t.TempDir(), "bench.json")
	require.NoError(t, r.WriteJSON(path))
	got, err := ReadJSON(path)
	require.NoError(t, err)
	assert.Equal(t, r.Workloads, got.Workloads)
	assert.Equal(t, r.Contenders, got.Contenders)
}
