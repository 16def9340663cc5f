package difftest

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// COqmgr is the C old queue manager of the Debian Postfix 3.7 package, the
// reference for every scenario.
const COqmgr = "/usr/lib/postfix/sbin/oqmgr"

// settleTime is how long a run waits after Drive returns, so that postlogd
// writes the last lines and the observer reads them.
const settleTime = 500 * time.Millisecond

// Scenario is one load put on a private instance. Both runs get the same
// sinks, configuration and Drive function; only the queue manager differs.
type Scenario struct {
	// Sinks maps a sink name to its smtp-sink options. Names replace the
	// ports in normalised log lines, e.g. "[127.0.0.1]:slow".
	Sinks map[string][]string
	// Relay names the sink that receives mail for domains without an entry
	// in Routes. Without it, the relayhost port has no listener.
	Relay string
	// Routes maps a recipient domain to the sink that receives its mail,
	// through an inline transport_maps table of smtp:[127.0.0.1]:port
	// entries, so each domain is its own destination. A value with a colon
	// is used as the table entry itself, e.g. "nosuch:".
	Routes map[string]string
	// MainCF holds main.cf parameters on top of the harness defaults.
	MainCF map[string]string
	// MasterCFExtra holds lines appended to master.cf.
	MasterCFExtra []string
	// EditMasterCF, when set, rewrites the generated master.cf before
	// Postfix starts, e.g. to remove the retry service.
	EditMasterCF func(masterCF string) string
	// Drive submits mail and waits until the scenario has played out.
	Drive func(t *testing.T, e *Env)
	// SameQmgrLines makes Compare assert that both queue managers logged
	// the same normalised lines. Leave it off where the number of lines
	// depends on timing, e.g. repeated warnings.
	SameQmgrLines bool
	// KnownDifference, when set, skips the run of our queue manager with
	// this text: the scenario's figures are the C program's, and ours does
	// not reproduce them yet.
	KnownDifference string
}

// harnessMainCF are the parameters every scenario starts from. Connection
// caching is off, so each delivery in progress is one connection at a sink,
// and the time parameters are short, so a scenario takes seconds.
var harnessMainCF = map[string]string{
	"smtp_connection_cache_on_demand": "no",
	"queue_run_delay":                 "2s",
	"minimal_backoff_time":            "2s",
	"maximal_backoff_time":            "4s",
	"transport_retry_time":            "2s",
	"smtp_connect_timeout":            "5s",
	"delay_warning_time":              "0",
	"bounce_notice_recipient":         "postmaster",
	"notify_classes":                  "",
}

// Env is one run of a scenario: the instance, its sinks and the observer.
type Env struct {
	Qmgr  string // "C" or "Go"
	Inst  *testbed.Instance
	Sinks map[string]*testbed.Sink

	obs *observer
}

// Compare runs the scenario once with the C oqmgr and once with ours, side
// by side, and calls check with each observation. check asserts the
// figures of the C program, so it must pass for both. When
// SameQmgrLines is set, it also asserts that both queue managers wrote the
// same normalised lines, in any order.
func Compare(t *testing.T, sc Scenario, check func(t *testing.T, o *Observation)) {
	t.Helper()
	testbed.RequireEnvironment(t)
	ours := testbed.OurQmgr(t)

	runs := []struct{ name, binary string }{{"C", COqmgr}, {"Go", ours}}
	observed := make([]*Observation, len(runs))
	// The group returns only after both parallel runs have finished.
	t.Run("runs", func(t *testing.T) {
		for n, r := range runs {
			t.Run(r.name, func(t *testing.T) {
				t.Parallel()
				if r.name == "Go" && sc.KnownDifference != "" {
					t.Skip("known difference: " + sc.KnownDifference)
				}
				o := Run(t, sc, r.name, r.binary)
				check(t, o)
				if t.Failed() {
					t.Logf("%s queue manager lines:\n%s", r.name, strings.Join(o.QmgrLines(), "\n"))
					t.Logf("%s status lines:\n%s", r.name, formatDeliveries(o.Deliveries))
				}
				observed[n] = o
			})
		}
	})

	cObs, goObs := observed[0], observed[1]
	if sc.SameQmgrLines && cObs != nil && goObs != nil {
		assert.ElementsMatch(t, cObs.QmgrLines(), goObs.QmgrLines(), "normalised queue manager lines: C (list A) and ours (list B)")
	}
}

// Run plays the scenario once with the given queue manager binary and
// returns what was observed.
func Run(t *testing.T, sc Scenario, name, qmgr string) *Observation {
	t.Helper()
	sinks := make(map[string]*testbed.Sink, len(sc.Sinks))
	ports := make(map[string]int, len(sc.Sinks))
	for _, sinkName := range slices.Sorted(maps.Keys(sc.Sinks)) {
		s := testbed.StartSink(t, sc.Sinks[sinkName]...)
		sinks[sinkName] = s
		ports[sinkName] = s.Port
	}

	options := testbed.Options{
		QmgrBinary:    qmgr,
		MainCF:        mainCF(sc, ports),
		MasterCFExtra: sc.MasterCFExtra,
	}
	if sc.Relay != "" {
		options.RelayPort = ports[sc.Relay]
	}
	inst := testbed.New(t, options)
	if sc.EditMasterCF != nil {
		path := filepath.Join(inst.ConfigDir, "master.cf")
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, []byte(sc.EditMasterCF(string(data))), 0o644))
	}

	e := &Env{Qmgr: name, Inst: inst, Sinks: sinks}
	e.obs = startObserver(inst.MaillogPath, ports)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			e.obs.stop()
		}
	}
	t.Cleanup(stop)

	require.NoError(t, inst.Start())
	sc.Drive(t, e)
	time.Sleep(settleTime)
	stop()

	o := e.Observe()
	o.Received = make(map[string][]int, len(sinks))
	for sinkName, s := range sinks {
		msgs, err := s.Messages()
		require.NoError(t, err)
		for _, msg := range msgs {
			o.Received[sinkName] = append(o.Received[sinkName], strings.Count(msg, "\nX-Rcpt-Args:")+boolInt(strings.HasPrefix(msg, "X-Rcpt-Args:")))
		}
	}
	return o
}

func mainCF(sc Scenario, ports map[string]int) map[string]string {
	params := maps.Clone(harnessMainCF)
	if len(sc.Routes) > 0 {
		var entries []string
		for _, domain := range slices.Sorted(maps.Keys(sc.Routes)) {
			target := sc.Routes[domain]
			if !strings.Contains(target, ":") {
				target = fmt.Sprintf("smtp:[127.0.0.1]:%d", ports[target])
			}
			entries = append(entries, domain+"="+target)
		}
		params["transport_maps"] = "inline:{" + strings.Join(entries, ", ") + "}"
	}
	maps.Copy(params, sc.MainCF)
	return params
}

func formatDeliveries(ds []Delivery) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "%6.2fs %s %s to=<%s> relay=%s dsn=%s status=%s (%s)\n",
			d.At.Seconds(), d.Program, d.Message, d.Recipient, d.Relay, d.DSN, d.Status, d.Reason)
	}
	return b.String()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
