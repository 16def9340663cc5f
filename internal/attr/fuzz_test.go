package attr

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadList checks that any input either decodes or fails with an error,
// and that whatever decodes encodes back to a stream that decodes the same.
func FuzzReadList(f *testing.F) {
	f.Add([]byte("protocol\x00delivery_request_protocol\x00\x00"))
	f.Add([]byte("flags\x000\x00transport\x00smtp\x00nexthop\x00example.com\x00\x00"))
	f.Add([]byte("{\x00k\x00v\x00}\x00\x00"))
	f.Add([]byte("status\x00\x00status\x004294967295\x00\x00"))

	f.Fuzz(func(t *testing.T, input []byte) {
		r := NewReader(bytes.NewReader(input), "fuzz")
		for {
			list, err := r.ReadList()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
					!errors.Is(err, ErrProtocol) {
					t.Fatalf("ReadList(%q) returned an unclassified error: %v", input, err)
				}
				return
			}
			checkReencodes(t, list)
		}
	})
}

func checkReencodes(t *testing.T, list []Attr) {
	var b Builder
	for _, a := range list {
		if a.Name == TableOpen {
			b.Table(a.Table)
			continue
		}
		b.Str(a.Name, a.Value)
	}
	b.End()
	encoded, err := b.Bytes()
	if err != nil {
		t.Fatalf("encoding decoded list %q failed: %v", list, err)
	}

	again, err := NewReader(bytes.NewReader(encoded), "fuzz").ReadList()
	if err != nil {
		t.Fatalf("decoding re-encoded %q failed: %v", encoded, err)
	}
	if len(again) != len(list) {
		t.Fatalf("re-encoded list decodes to %d attributes, want %d", len(again), len(list))
	}
	for i := range list {
		if again[i].Name != list[i].Name || again[i].Value != list[i].Value ||
			len(again[i].Table) != len(list[i].Table) {
			t.Fatalf("attribute %d: got %+v, want %+v", i, again[i], list[i])
		}
	}
}
