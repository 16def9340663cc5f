package conf

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writeMainCF writes text to main.cf in a new temporary directory and
// returns the directory. The file's time stamps are set an hour back so
// that reading it does not wait for a "hot" file to settle. The directory
// name does not contain the test name, because Postfix expands
// $config_directory inside other values and subtest names contain '$'.
func writeMainCF(t *testing.T, text string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "oqmgr-conf-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "main.cf")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(path, old, old))
	return dir
}

// dictOf builds a dictionary from name/value pairs.
func dictOf(pairs ...string) *Dict {
	d := NewDict()
	for i := 0; i+1 < len(pairs); i += 2 {
		d.Set(pairs[i], pairs[i+1])
	}
	return d
}
