package testbed

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// isMountPoint reports whether dir is on another device than its parent.
func isMountPoint(t *testing.T, dir string) bool {
	t.Helper()
	var st, parent unix.Stat_t
	require.NoError(t, unix.Stat(dir, &st))
	require.NoError(t, unix.Stat(filepath.Dir(dir), &parent))
	return st.Dev != parent.Dev
}

func TestQueueFS_FillBreakRepair(t *testing.T) {
	t.Parallel()
	RequireEnvironment(t)
	inst, err := Create(Options{QmgrBinary: cOqmgr, QueueFSSize: "16M"})
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = inst.Close(false)
		}
	})
	require.True(t, isMountPoint(t, inst.QueueDir), "queue directory is a mount point")
	probe := filepath.Join(inst.QueueDir, "probe")

	filled, err := inst.FillQueueFS()
	require.NoError(t, err)
	assert.Greater(t, filled, int64(8<<20), "bytes written to a 16M file system")
	err = os.WriteFile(probe, make([]byte, 64<<10), 0o600)
	assert.ErrorIs(t, err, syscall.ENOSPC, "writing to a full queue file system")
	require.NoError(t, inst.FreeQueueFS())
	require.NoError(t, os.WriteFile(probe, make([]byte, 64<<10), 0o600), "writing after FreeQueueFS")

	require.NoError(t, inst.BreakQueueFS())
	err = os.WriteFile(probe, nil, 0o600)
	assert.ErrorIs(t, err, syscall.EROFS, "writing after BreakQueueFS")
	require.NoError(t, inst.RepairQueueFS())
	require.NoError(t, os.WriteFile(probe, nil, 0o600), "writing after RepairQueueFS")

	require.NoError(t, inst.Close(false))
	closed = true
	_, err = os.Stat(inst.QueueDir)
	assert.ErrorIs(t, err, os.ErrNotExist, "queue directory after Close")
}
