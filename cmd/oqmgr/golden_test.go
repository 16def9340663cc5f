package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/maillog from the C oqmgr")

// goldenScenario is the path of the normalised queue manager log lines
// of the C oqmgr for runGoldenScenario.
var goldenScenario = filepath.Join("..", "..", "testdata", "maillog", "qmgr-scenario.golden")

// corruptID is the queue file name of the damaged file in the scenario.
const corruptID = "ABCDE123456"

// runGoldenScenario runs one fixed scenario in a fresh instance whose queue
// manager is program and returns the queue manager's normalised log lines.
// The steps are a remote delivery, a local delivery, a local bounce that
// sends a notification to the remote sender, and a damaged queue file.
// Each step ends before the next starts, so the log order does not depend
// on timing.
func runGoldenScenario(t *testing.T, program string) string {
	t.Helper()
	sink := testbed.StartSink(t)
	inst := testbed.New(t, testbed.Options{QmgrBinary: program, RelayPort: sink.Port})
	require.NoError(t, inst.Start())

	require.NoError(t, inst.SubmitSMTP("sender@example.org", []string{"rcpt@example.net"}, "Subject: remote\n\nbody\n"))
	require.NoError(t, sink.WaitDelivered(1, 30*time.Second))
	require.NoError(t, inst.WaitQueueEmpty(30*time.Second))

	require.NoError(t, inst.Sendmail("sender@example.org", []string{inst.LocalAddress()}, "Subject: local\n\nbody\n"))
	require.NoError(t, inst.WaitLog("status=sent (delivered to mailbox)", 30*time.Second))
	require.NoError(t, inst.WaitQueueEmpty(30*time.Second))

	// smtpd rejects an unknown local user, so this one goes through pickup.
	require.NoError(t, inst.Sendmail("sender@example.org", []string{"nosuchuser@" + inst.LocalDomain}, "Subject: bounce\n\nbody\n"))
	require.NoError(t, sink.WaitDelivered(2, 30*time.Second))
	require.NoError(t, inst.WaitQueueEmpty(30*time.Second))

	require.NoError(t, inst.PlaceQueueFile("incoming", corruptID, []byte("this is not a queue file\n"), 0o700))
	require.NoError(t, inst.Kick("I"))
	require.NoError(t, inst.WaitLog(`to queue "corrupt"`, 30*time.Second))
	// The reason follows the "saving corrupt file" line.
	time.Sleep(500 * time.Millisecond)

	log, err := inst.Log()
	require.NoError(t, err)
	return normaliseQmgrLog(log, corruptID)
}

var (
	qmgrRecord = regexp.MustCompile(`^.* postfix/qmgr\[\d+\]: (.*)$`)
	queueIDs   = regexp.MustCompile(`\b[0-9A-F]{6,12}\b`)
	sizeField  = regexp.MustCompile(`size=\d+`)
)

// normaliseQmgrLog keeps the queue manager's lines and makes them
// comparable between runs: queue ids become Q1, Q2, ... in order of first
// appearance (keep names an id that stays as it is), and message sizes,
// which include Received: headers with ids and times, become "size=N".
// Lines are grouped by queue id in order of first appearance, so that the
// interleaving of two messages handled at the same time does not matter.
func normaliseQmgrLog(log, keep string) string {
	names := map[string]string{keep: keep}
	var order []string
	groups := map[string][]string{}
	for _, line := range strings.Split(log, "\n") {
		m := qmgrRecord.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		text := m[1]
		first := ""
		text = queueIDs.ReplaceAllStringFunc(text, func(id string) string {
			name, ok := names[id]
			if !ok {
				name = fmt.Sprintf("Q%d", len(names))
				names[id] = name
			}
			if first == "" {
				first = name
			}
			return name
		})
		text = sizeField.ReplaceAllString(text, "size=N")
		if _, ok := groups[first]; !ok {
			order = append(order, first)
		}
		groups[first] = append(groups[first], text)
	}
	var b strings.Builder
	for _, id := range order {
		for _, line := range groups[id] {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func TestGolden_QmgrLogMatchesC(t *testing.T) {
	testbed.RequireEnvironment(t)
	if _, err := os.Stat(referenceQmgr); err != nil {
		t.Skipf("the C oqmgr is not installed: %v", err)
	}

	reference := runGoldenScenario(t, referenceQmgr)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(goldenScenario), 0o755))
		require.NoError(t, os.WriteFile(goldenScenario, []byte(reference), 0o644))
	}
	golden, err := os.ReadFile(goldenScenario)
	require.NoError(t, err, "run with -update to create it")
	require.Equal(t, string(golden), reference, "the C oqmgr no longer logs what %s holds", goldenScenario)

	ours := runGoldenScenario(t, testbed.OurQmgr(t))
	assert.Equal(t, reference, ours, "queue manager log lines, C (expected) and ours (actual)")
}
