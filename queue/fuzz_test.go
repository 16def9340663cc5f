package queue

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRead feeds arbitrary bytes to Read and ReadMore. The seed corpus in
// testdata/fuzz/FuzzRead holds the real and damaged queue files.
func FuzzRead(f *testing.F) {
	for _, rf := range realFiles {
		data, err := os.ReadFile(filepath.Join("testdata/real", string(rf.id)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	b := baseBuilder()
	b.AppendedRecipients = []BuildRecipient{{Address: "m@x"}}
	f.Add(b.Bytes())

	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "3B2A41C0D7F")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		file, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()

		for _, limit := range []int{0, 1} {
			m, err := Read(file, "3B2A41C0D7F", "active/3B2A41C0D7F", limit)
			if m == nil {
				t.Fatalf("Read returned no message (error %v)", err)
			}
			if err != nil {
				checkFileError(t, err)
				continue
			}
			checkRecipients(t, data, m)

			// Each batch makes progress, so the batches end.
			for batches := 0; m.NextRecipientOffset != 0; batches++ {
				if batches > len(data) {
					t.Fatalf("ReadMore does not terminate")
				}
				if err := ReadMore(file, m, limit); err != nil {
					checkFileError(t, err)
					break
				}
				checkRecipients(t, data, m)
			}
		}
	})
}

func checkFileError(t *testing.T, err error) {
	t.Helper()
	var fileErr *FileError
	if !errors.As(err, &fileErr) {
		t.Fatalf("error is not a *FileError: %v", err)
	}
	if len(fileErr.Lines) == 0 {
		t.Fatalf("FileError without log lines: %v", err)
	}
}

func checkRecipients(t *testing.T, data []byte, m *Message) {
	t.Helper()
	for _, r := range m.Recipients {
		if r.Offset < 0 || r.Offset >= int64(len(data)) || data[r.Offset] != byte(RecRcpt) {
			t.Fatalf("recipient %q has offset %d, which is not an R record", r.Address, r.Offset)
		}
	}
}
