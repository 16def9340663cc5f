package queue

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestParseID(t *testing.T) {
	tests := []struct {
		in    string
		valid bool
	}{
		{"3B2A41C0D7F", true},
		{"4jh4Jt4J3cz1SCKb", true},
		{"example_com", true},
		{"", false},
		{"3B2A4.tmp", false},
		{"../active", false},
		{"a b", false},
		{string(make([]byte, 256)), false},
	}
	for _, tc := range tests {
		id, err := ParseID(tc.in)
		if tc.valid {
			assert.NoError(t, err, "ParseID(%q)", tc.in)
			assert.Equal(t, ID(tc.in), id)
		} else {
			assert.ErrorIs(t, err, ErrInvalidID, "ParseID(%q)", tc.in)
		}
	}
}

// The depth-2 paths were produced by postsuper -s of Postfix 3.7.11, which
// moved each file, created under deferred/ with a name matching its inode,
// to its hashed location.
func TestDir_Path(t *testing.T) {
	defaults := []string{"deferred", "defer"}
	tests := []struct {
		name   string
		hashed []string
		depth  int
		queue  string
		id     ID
		want   string
	}{
		{"short id depth 1", defaults, 1, Deferred, "3B2A41C0D7F", "deferred/3/3B2A41C0D7F"},
		{"defer log depth 1", defaults, 1, Defer, "3B2A41C0D7F", "defer/3/3B2A41C0D7F"},
		{"unhashed queue", defaults, 1, Active, "3B2A41C0D7F", "active/3B2A41C0D7F"},
		{"short id depth 2", defaults, 2, Deferred, "31BB8984132", "deferred/3/1/31BB8984132"},
		{"small usec depth 2", defaults, 2, Deferred, "00005984141", "deferred/0/0/00005984141"},
		{"long id large usec", defaults, 2, Deferred, "4jh43s75plz1SCGq", "deferred/F/4/4jh43s75plz1SCGq"},
		{"long id small usec", defaults, 2, Deferred, "4jh43s000Dz1SCH8", "deferred/0/0/4jh43s000Dz1SCH8"},
		{"short name padded", defaults, 3, Deferred, "AB", "deferred/A/B/_/AB"},
		{"case-insensitive names", []string{"DEFERRED"}, 1, Deferred, "3B2A41C0D7F", "deferred/3/3B2A41C0D7F"},
		{"incoming hashed on request", []string{"incoming"}, 1, Incoming, "3B2A41C0D7F", "incoming/3/3B2A41C0D7F"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDir("/var/spool/postfix", tc.hashed, tc.depth)
			assert.Equal(t, tc.want, d.RelPath(tc.queue, tc.id))
			assert.Equal(t, "/var/spool/postfix/"+tc.want, d.Path(tc.queue, tc.id))
		})
	}
}

func TestID_IsLong(t *testing.T) {
	assert.True(t, ID("4jh4Jt4J3cz1SCKb").IsLong())
	assert.False(t, ID("3B2A41C0D7F").IsLong())
	assert.False(t, ID("abczdef").IsLong(), "a z before index 10 is not a separator")
}

func newTestDir(t *testing.T, depth int) *Dir {
	t.Helper()
	root := t.TempDir()
	for _, q := range []string{Incoming, Active, Deferred, Hold, Corrupt, Defer} {
		require.NoError(t, os.Mkdir(filepath.Join(root, q), 0o700))
	}
	return NewDir(root, []string{"deferred", "defer"}, depth)
}

func writeQueueFile(t *testing.T, d *Dir, queue string, id ID, mode os.FileMode) {
	t.Helper()
	path := d.Path(queue, id)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte("x"), 0o600))
	require.NoError(t, os.Chmod(path, mode))
}

func TestScan_HashedDeferred(t *testing.T) {
	d := newTestDir(t, 2)
	ids := []ID{"3B2A41C0D7F", "31BB8984132", "00005984141", "4jh43s75plz1SCGq", "4jh43s000Dz1SCH8", "F0000AAA"}
	for _, id := range ids {
		writeQueueFile(t, d, Deferred, id, 0o700)
	}
	// A stray file with an invalid name is skipped.
	require.NoError(t, os.WriteFile(filepath.Join(d.Root(), Deferred, "3", "junk.tmp"), nil, 0o600))

	scan, err := d.Scan(Deferred)
	require.NoError(t, err)
	var got []ID
	for {
		id, ok := scan.Next()
		if !ok {
			break
		}
		got = append(got, id)
	}
	require.NoError(t, scan.Close())

	slices.Sort(got)
	want := slices.Clone(ids)
	slices.Sort(want)
	assert.Equal(t, want, got)
}

func TestScan_InterleavedQueues(t *testing.T) {
	d := newTestDir(t, 1)
	writeQueueFile(t, d, Incoming, "AAAAA1", 0o700)
	writeQueueFile(t, d, Incoming, "AAAAA2", 0o700)
	writeQueueFile(t, d, Deferred, "BBBBB1", 0o700)

	incoming, err := d.Scan(Incoming)
	require.NoError(t, err)
	defer incoming.Close()
	deferred, err := d.Scan(Deferred)
	require.NoError(t, err)
	defer deferred.Close()

	var got []ID
	for range 3 {
		if id, ok := incoming.Next(); ok {
			got = append(got, id)
		}
		if id, ok := deferred.Next(); ok {
			got = append(got, id)
		}
	}
	assert.ElementsMatch(t, []ID{"AAAAA1", "AAAAA2", "BBBBB1"}, got)
	_, ok := incoming.Next()
	assert.False(t, ok, "incoming scan is exhausted")
}

func TestScan_MissingQueue(t *testing.T) {
	d := NewDir(t.TempDir(), nil, 1)
	_, err := d.Scan(Incoming)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestDir_MoveCreatesHashDirs(t *testing.T) {
	d := newTestDir(t, 2)
	writeQueueFile(t, d, Active, "4jh43s75plz1SCGq", 0o700)

	require.NoError(t, d.Move("4jh43s75plz1SCGq", Active, Deferred))

	info, err := os.Stat(filepath.Join(d.Root(), "deferred/F/4/4jh43s75plz1SCGq"))
	require.NoError(t, err)
	assert.True(t, info.Mode().IsRegular())
	dirInfo, err := os.Stat(filepath.Join(d.Root(), "deferred/F"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), dirInfo.Mode().Perm())
	_, err = os.Stat(d.Path(Active, "4jh43s75plz1SCGq"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	// And back into an unhashed queue.
	require.NoError(t, d.Move("4jh43s75plz1SCGq", Deferred, Incoming))
	_, err = os.Stat(d.Path(Incoming, "4jh43s75plz1SCGq"))
	assert.NoError(t, err)
}

func TestDir_MoveVanishedFile(t *testing.T) {
	d := newTestDir(t, 1)
	err := d.Move("3B2A41C0D7F", Active, Deferred)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.ErrorContains(t, err, "3B2A41C0D7F")
}

func TestDir_SetTimeAndRemove(t *testing.T) {
	d := newTestDir(t, 1)
	writeQueueFile(t, d, Deferred, "3B2A41C0D7F", 0o700)
	when := time.Unix(1796433225, 0)

	require.NoError(t, d.SetTime(Deferred, "3B2A41C0D7F", when))
	var st unix.Stat_t
	require.NoError(t, unix.Stat(d.Path(Deferred, "3B2A41C0D7F"), &st))
	assert.Equal(t, when.Unix(), st.Mtim.Sec)
	assert.Equal(t, when.Unix(), st.Atim.Sec)

	require.NoError(t, d.Remove(Deferred, "3B2A41C0D7F"))
	assert.ErrorIs(t, d.Remove(Deferred, "3B2A41C0D7F"), os.ErrNotExist)
}

func TestDir_Ready(t *testing.T) {
	d := newTestDir(t, 1)
	writeQueueFile(t, d, Incoming, "READY1", 0o700)
	writeQueueFile(t, d, Incoming, "WRITING1", 0o600)
	writeQueueFile(t, d, Incoming, "CORRUPT1", 0o400)
	writeQueueFile(t, d, Incoming, "EXPIRE1", 0o710)
	require.NoError(t, os.Symlink(d.Path(Incoming, "READY1"), d.Path(Incoming, "LINK1")))

	tests := []struct {
		id    ID
		ready bool
	}{
		{"READY1", true},
		{"EXPIRE1", true},
		{"WRITING1", false},
		{"CORRUPT1", false},
		{"LINK1", false},
		{"MISSING1", false},
	}
	for _, tc := range tests {
		_, ready := d.Ready(Incoming, tc.id)
		assert.Equal(t, tc.ready, ready, "Ready(%s)", tc.id)
	}
}

func TestDir_OpenLocked(t *testing.T) {
	d := newTestDir(t, 1)
	writeQueueFile(t, d, Active, "3B2A41C0D7F", 0o700)

	// A delivery agent holds a shared lock while it delivers.
	agent, err := os.Open(d.Path(Active, "3B2A41C0D7F"))
	require.NoError(t, err)
	require.NoError(t, unix.Flock(int(agent.Fd()), unix.LOCK_SH|unix.LOCK_NB))

	_, err = d.Open(Active, "3B2A41C0D7F")
	assert.ErrorIs(t, err, ErrLocked)

	require.NoError(t, agent.Close())
	f, err := d.Open(Active, "3B2A41C0D7F")
	require.NoError(t, err)
	defer f.Close()

	// The exclusive lock is held until f is closed.
	other, err := os.Open(d.Path(Active, "3B2A41C0D7F"))
	require.NoError(t, err)
	defer other.Close()
	assert.ErrorIs(t, unix.Flock(int(other.Fd()), unix.LOCK_SH|unix.LOCK_NB), unix.EWOULDBLOCK)
}
