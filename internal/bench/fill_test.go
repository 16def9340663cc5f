package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// poolIDs are long queue ids. The four characters before the 'z' are the
// microseconds in base 52, whose hexadecimal form picks the hash
// subdirectory: "0000" is 0 (directory 0), "00R0" is 23*52 = 1196 =
// 0x004AC (directory 0 too, because only the first hex digit counts at
// depth 1), and "V000" is 26*52^3 = 3655808 = 0x37C880 (directory 3).
var poolIDs = []string{"4jh4Jt0000z1SCKb", "4jh4Jt00R0z1SCKc", "4jh4JtV000z1SCKd"}

func makePool(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, id := range poolIDs {
		require.NoError(t, os.WriteFile(filepath.Join(dir, id), []byte("queue file "+id), 0o700))
	}
	return dir
}

func TestPrepareArchive_Incoming(t *testing.T) {
	pool := makePool(t)
	archive := filepath.Join(t.TempDir(), "archive")
	require.NoError(t, prepareArchive(archive, pool, workload{name: Discard, messages: 2, queue: "incoming"}))

	names, err := poolNames(filepath.Join(archive, "incoming"))
	require.NoError(t, err)
	assert.Equal(t, poolIDs[:2], names, "the first messages in name order")
	info, err := os.Stat(filepath.Join(archive, "incoming"))
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|0o700, info.Mode(), "queue directory mode")
}

func TestPrepareArchive_DeferredIsHashedAndDue(t *testing.T) {
	pool := makePool(t)
	archive := filepath.Join(t.TempDir(), "archive")
	before := time.Now()
	require.NoError(t, prepareArchive(archive, pool, workload{name: Deferred, messages: 3, queue: "deferred"}))

	for _, path := range []string{"deferred/0/4jh4Jt0000z1SCKb", "deferred/0/4jh4Jt00R0z1SCKc", "deferred/3/4jh4JtV000z1SCKd"} {
		info, err := os.Stat(filepath.Join(archive, path))
		if !assert.NoError(t, err, "archive file %s", path) {
			continue
		}
		assert.WithinDuration(t, before.Add(-deferredAge), info.ModTime(), 5*time.Second, "time stamp of %s", path)
		assert.Equal(t, os.FileMode(0o700), info.Mode(), "mode of %s", path)
	}
	data, err := os.ReadFile(filepath.Join(archive, "deferred/3/4jh4JtV000z1SCKd"))
	require.NoError(t, err)
	assert.Equal(t, "queue file 4jh4JtV000z1SCKd", string(data))
	pooled, err := os.Stat(filepath.Join(pool, poolIDs[0]))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), pooled.ModTime(), time.Minute, "the pool's own time stamps stay")
}

func TestPrepareArchive_PoolTooSmall(t *testing.T) {
	err := prepareArchive(t.TempDir(), makePool(t), workload{name: SMTP, messages: 4, queue: "incoming"})
	assert.ErrorContains(t, err, "contains 3 messages, workload smtp needs 4")
}

func TestRestore_ReplacesQueueContents(t *testing.T) {
	pool := makePool(t)
	archive := filepath.Join(t.TempDir(), "archive")
	require.NoError(t, prepareArchive(archive, pool, workload{name: Discard, messages: 3, queue: "incoming"}))

	queueDir := t.TempDir()
	for _, q := range []string{"incoming", "active", "deferred/F"} {
		require.NoError(t, os.MkdirAll(filepath.Join(queueDir, q), 0o700))
	}
	require.NoError(t, os.WriteFile(filepath.Join(queueDir, "active", "leftover"), nil, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(queueDir, "deferred", "F", "leftover"), nil, 0o700))

	require.NoError(t, restore(queueDir, archive))
	names, err := poolNames(filepath.Join(queueDir, "incoming"))
	require.NoError(t, err)
	assert.Equal(t, poolIDs, names)
	left, err := os.ReadDir(filepath.Join(queueDir, "active"))
	require.NoError(t, err)
	assert.Empty(t, left, "active queue after restore")
	left, err = os.ReadDir(filepath.Join(queueDir, "deferred"))
	require.NoError(t, err)
	assert.Empty(t, left, "deferred queue after restore")
}

func TestRemoveQmgrService(t *testing.T) {
	dir := t.TempDir()
	const masterCF = "# comment\npickup    unix  n - n 60 1 pickup\nqmgr      unix  n - n 300 1 qmgr\nqmgrx     unix  - - n - - x\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "master.cf"), []byte(masterCF), 0o644))
	require.NoError(t, removeQmgrService(dir))
	data, err := os.ReadFile(filepath.Join(dir, "master.cf"))
	require.NoError(t, err)
	assert.Equal(t, "# comment\npickup    unix  n - n 60 1 pickup\nqmgrx     unix  - - n - - x\n", string(data))

	assert.ErrorContains(t, removeQmgrService(dir), "no qmgr service")
}
