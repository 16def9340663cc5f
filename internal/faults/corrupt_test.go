package faults

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
	"oqmgr-go/queue"
)

// damagedFile is one bad entry dropped into the incoming queue.
type damagedFile struct {
	name string
	id   string
	// make creates the entry at path.
	make func(t *testing.T, path string)
	// nonRegular marks a directory or symbolic link, which the C oqmgr
	// leaves in place with a warning at every scan.
	nonRegular bool
}

// validQueueFile returns a well-formed queue file for one recipient.
func validQueueFile() []byte {
	// A fixed time with a six-digit microsecond part keeps the record
	// lengths, and so the warnings about them, the same in every run. It
	// is recent, so the message has not expired.
	now := time.Now()
	arrival := time.Unix(now.Unix()-60, 123456000)
	b := queue.Builder{
		Arrival:    arrival,
		Sender:     "sender@example.org",
		Recipients: []queue.BuildRecipient{{Address: "damaged@example.net"}},
		Content:    []string{"Subject: damaged", "", "body"},
	}
	return b.Bytes()
}

// senderRecord returns the offset of the sender record in a file from
// validQueueFile.
func senderRecord(t *testing.T, file []byte) int {
	t.Helper()
	sender := "sender@example.org"
	at := bytes.Index(file, append([]byte{'S', byte(len(sender))}, sender...))
	require.Positive(t, at, "sender record in the built file")
	return at
}

// rewriteSize replaces field (0-based) of the size record, which the builder
// writes as six numbers of 15 characters after a one-byte length.
func rewriteSize(t *testing.T, file []byte, field int, delta int64) []byte {
	t.Helper()
	const width = 6*15 + 5
	require.Equal(t, byte('C'), file[0])
	require.Equal(t, byte(width), file[1])
	fields := strings.Fields(string(file[2 : 2+width]))
	require.Len(t, fields, 6)
	n, err := strconv.ParseInt(fields[field], 10, 64)
	require.NoError(t, err)
	fields[field] = strconv.FormatInt(n+delta, 10)
	var text strings.Builder
	for i, f := range fields {
		if i > 0 {
			text.WriteByte(' ')
		}
		fmt.Fprintf(&text, "%15s", f)
	}
	out := slices.Clone(file)
	copy(out[2:], text.String())
	return out
}

// writeReady writes data as a queue file ready for a queue manager: owned
// by postfix with mode 0700, or with mode when it is not zero.
func writeReady(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if mode == 0 {
		mode = 0o700
	}
	// Build the file beside the queue and rename it into place, so a
	// running queue manager never sees it half made.
	tmp := filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(path))), filepath.Base(path)+".tmp")
	require.NoError(t, os.WriteFile(tmp, data, mode))
	require.NoError(t, os.Chmod(tmp, mode))
	uid, gid := postfixIDs(t)
	require.NoError(t, os.Lchown(tmp, uid, gid))
	require.NoError(t, os.Rename(tmp, path))
}

func damagedFiles() []damagedFile {
	data := func(f func(t *testing.T, file []byte) []byte) func(t *testing.T, path string) {
		return func(t *testing.T, path string) { writeReady(t, path, f(t, validQueueFile()), 0) }
	}
	return []damagedFile{
		{name: "random bytes", id: "E0A01000001", make: data(func(t *testing.T, _ []byte) []byte {
			r := rand.New(rand.NewPCG(1, 2))
			junk := make([]byte, 300)
			for i := range junk {
				junk[i] = byte(r.UintN(256))
			}
			return junk
		})},
		{name: "truncated", id: "E0A02000002", make: data(func(t *testing.T, f []byte) []byte { return f[:len(f)/2] })},
		{name: "missing end record", id: "E0A03000003", make: data(func(t *testing.T, f []byte) []byte {
			require.Equal(t, []byte{'E', 0}, f[len(f)-2:])
			return f[:len(f)-2]
		})},
		{name: "unknown record type", id: "E0A04000004", make: data(func(t *testing.T, f []byte) []byte {
			f[senderRecord(t, f)] = 'Z'
			return f
		})},
		{name: "length past end of file", id: "E0A05000005", make: data(func(t *testing.T, f []byte) []byte {
			at := senderRecord(t, f)
			huge := []byte{0xff, 0xff, 0xff, 0x0f}
			return slices.Concat(f[:at+1], huge, f[at+2:])
		})},
		{name: "too many length bytes", id: "E0A06000006", make: data(func(t *testing.T, f []byte) []byte {
			at := senderRecord(t, f)
			return slices.Concat(f[:at+1], []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80}, f[at+2:])
		})},
		{name: "size record content offset lies", id: "E0A07000007", make: data(func(t *testing.T, f []byte) []byte {
			return rewriteSize(t, f, 1, 3)
		})},
		{name: "size record content span past end", id: "E0A08000008", make: data(func(t *testing.T, f []byte) []byte {
			return rewriteSize(t, f, 0, 100000)
		})},
		{name: "zero length", id: "E0A09000009", make: data(func(t *testing.T, _ []byte) []byte { return nil })},
		{name: "still being written", id: "E0A0A00000A", make: func(t *testing.T, path string) {
			writeReady(t, path, validQueueFile(), 0o600)
		}},
		{name: "directory", id: "E0A0B00000B", nonRegular: true, make: func(t *testing.T, path string) {
			require.NoError(t, os.Mkdir(path, 0o700))
			uid, gid := postfixIDs(t)
			require.NoError(t, os.Chown(path, uid, gid))
		}},
		{name: "symbolic link", id: "E0A0C00000C", nonRegular: true, make: func(t *testing.T, path string) {
			target := path + "-target"
			writeReady(t, filepath.Join(filepath.Dir(filepath.Dir(path)), "saved", filepath.Base(target)), validQueueFile(), 0)
			require.NoError(t, os.Symlink(filepath.Join("..", "saved", filepath.Base(target)), path))
			uid, gid := postfixIDs(t)
			require.NoError(t, os.Lchown(path, uid, gid))
		}},
	}
}

// whereIs returns the queue that holds an entry named id, or "gone".
func whereIs(inst *testbed.Instance, id string) string {
	for _, q := range []string{"incoming", "active", "deferred", "hold", "corrupt"} {
		for _, pattern := range []string{filepath.Join(inst.QueueDir, q, id), filepath.Join(inst.QueueDir, q, "*", id)} {
			if matches, _ := filepath.Glob(pattern); len(matches) > 0 {
				return q
			}
		}
	}
	return "gone"
}

// corruptOutcome is where each damaged entry ended up and the distinct qmgr
// lines that name it.
type corruptOutcome struct {
	place map[string]string
	lines map[string][]string
}

func runDamagedFiles(t *testing.T, binary string) corruptOutcome {
	sink := testbed.StartSink(t)
	inst := startInstance(t, binary, testbed.Options{RelayPort: sink.Port, MainCF: fastRetry()})
	files := damagedFiles()
	for _, f := range files {
		f.make(t, filepath.Join(inst.QueueDir, "incoming", f.id))
	}
	require.NoError(t, inst.Kick("I"))

	// Good mail keeps flowing past the damaged files.
	const good = 5
	submitMessages(t, inst, good, 1)
	require.NoError(t, sink.WaitDelivered(good, 30*time.Second))

	// Wait until every entry stays where it is for two seconds.
	out := corruptOutcome{place: map[string]string{}, lines: map[string][]string{}}
	var last string
	stableSince := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && time.Since(stableSince) < 2*time.Second {
		var snapshot strings.Builder
		for _, f := range files {
			fmt.Fprintf(&snapshot, "%s=%s ", f.id, whereIs(inst, f.id))
		}
		if snapshot.String() != last {
			last = snapshot.String()
			stableSince = time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, f := range files {
		out.place[f.name] = whereIs(inst, f.id)
	}

	lines := qmgrLines(t, inst)
	for _, f := range files {
		var mine []string
		for _, line := range lines {
			if strings.Contains(line, f.id) && !slices.Contains(mine, line) {
				mine = append(mine, line)
			}
		}
		out.lines[f.name] = mine
	}
	assert.Equal(t, good, countSink(t, sink, good).delivered, "good messages delivered")
	assert.Len(t, qmgrPIDs(inst), 1, "qmgr processes running after the damaged files")
	return out
}

func TestCorrupt_FilesGoWhereCOqmgrSendsThem(t *testing.T) {
	outcomes := map[string]corruptOutcome{}
	var mu sync.Mutex
	t.Run("group", func(t *testing.T) {
		for _, impl := range implementations(t) {
			t.Run(impl.name, func(t *testing.T) {
				t.Parallel()
				out := runDamagedFiles(t, impl.binary)
				mu.Lock()
				outcomes[impl.name] = out
				mu.Unlock()
			})
		}
	})

	ours, c := outcomes["go"], outcomes["c"]
	if ours.place == nil || c.place == nil {
		t.Fatal("an implementation did not finish")
	}
	for _, f := range damagedFiles() {
		t.Logf("%-34s C: %-8s %q", f.name, c.place[f.name], c.lines[f.name])
		assert.Equal(t, c.place[f.name], ours.place[f.name], "%s: queue holding %s", f.name, f.id)
		if f.nonRegular {
			// TestCorrupt_NonRegularEntryWarns covers the line.
			continue
		}
		assert.Equal(t, c.lines[f.name], ours.lines[f.name], "%s: qmgr lines naming %s", f.name, f.id)
	}
	// Fixed expectations, so a change in both programs is noticed too.
	assert.Equal(t, "incoming", ours.place["still being written"], "a 0600 file is left alone")
	assert.Empty(t, ours.lines["still being written"], "no line about a 0600 file")
	assert.Equal(t, "corrupt", ours.place["random bytes"])
	assert.Equal(t, "corrupt", ours.place["missing end record"])
}

func TestCorrupt_NonRegularEntryWarns(t *testing.T) {
	inst := startInstance(t, ourBinary(t), testbed.Options{})
	uid, _ := postfixIDs(t)
	for _, f := range damagedFiles() {
		if !f.nonRegular {
			continue
		}
		f.make(t, filepath.Join(inst.QueueDir, "incoming", f.id))
		require.NoError(t, inst.Kick("I"))
		want := fmt.Sprintf("warning: incoming/%s: uid %d: not a regular file", f.id, uid)
		assert.NoError(t, inst.WaitLog(want, 10*time.Second), f.name)
		assert.Equal(t, "incoming", whereIs(inst, f.id), "%s stays in incoming", f.name)
	}
}
