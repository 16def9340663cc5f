package bench

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// tinySizes run every workload in about a minute, so that the whole path
// (fill, archive, restore, measure, report, chart) runs with the tests.
var tinySizes = Sizes{Discard: 20, SMTP: 10, Fanout: 2, Deferred: 20, Active: 10}

func TestRun_TinySizes(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping in short mode: starts 15 Postfix instances")
	}
	testbed.RequireEnvironment(t)
	ours := filepath.Join(t.TempDir(), "oqmgr")
	out, err := exec.Command("go", "build", "-o", ours, "oqmgr-go/cmd/oqmgr").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	var progress bytes.Buffer
	report, err := Run(Config{
		Contenders: DefaultContenders(ours),
		Sizes:      tinySizes,
		Rounds:     1,
		Timeout:    2 * time.Minute,
		Out:        &progress,
	})
	t.Log(progress.String())
	require.NoError(t, err)

	require.Len(t, report.Workloads, len(AllWorkloads))
	// /proc/stat counts in 10 ms ticks, and a tiny round may end within
	// one, so only some rounds show the machine busy.
	machineMeasured := 0
	for _, res := range report.Workloads {
		require.Len(t, res.Results, 3, "contenders of %s", res.Name)
		for _, c := range res.Results {
			require.Len(t, c.Rounds, 1, "rounds of %s on %s", c.Contender, res.Name)
			m := c.Rounds[0]
			if !assert.Empty(t, m.Error, "%s on %s", c.Contender, res.Name) {
				continue
			}
			assert.Positive(t, m.MessagesPerSecond, "%s on %s: messages per second", c.Contender, res.Name)
			assert.Greater(t, m.PeakRSSBytes, int64(1<<20), "%s on %s: peak RSS", c.Contender, res.Name)
			assert.LessOrEqual(t, m.MachineBusyPercent, float64(100*runtime.NumCPU()), "%s on %s: machine busy", c.Contender, res.Name)
			if m.MachineBusyPercent > 0 {
				machineMeasured++
			}
			if res.ActiveLimit == 0 {
				assert.Equal(t, res.Messages*res.Recipients, m.Delivered, "%s on %s: delivered recipients", c.Contender, res.Name)
			}
		}
		assert.Len(t, res.Ratios, 2, "ratios of ours on %s", res.Name)
	}
	assert.Positive(t, machineMeasured, "rounds that measured the machine busy")

	dir := t.TempDir()
	require.NoError(t, report.WriteJSON(filepath.Join(dir, "bench.json")))
	again, err := ReadJSON(filepath.Join(dir, "bench.json"))
	require.NoError(t, err)
	assert.Equal(t, report.Workloads, again.Workloads)
	require.NoError(t, WriteChart(report, filepath.Join(dir, "bench.png")))
	info, err := os.Stat(filepath.Join(dir, "bench.png"))
	require.NoError(t, err)
	assert.Positive(t, info.Size())
}
