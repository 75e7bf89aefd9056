package scenarios

import (
	"bytes"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Baseline for BenchmarkParse: yaml.v3 decoding the same text straight into
// a Script (no line-aware checks, no validation).
func BenchmarkParseBaselineYAMLUnmarshal(b *testing.B) {
	data, _ := Source("rate-limited")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var s Script
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	data, _ := Source("rate-limited")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// Baseline for BenchmarkNext: a bare counter behind a mutex.
func BenchmarkNextBaselineMutex(b *testing.B) {
	var mu sync.Mutex
	n := 0
	for b.Loop() {
		mu.Lock()
		n++
		mu.Unlock()
	}
}

func BenchmarkNext(b *testing.B) {
	st := NewState(MustLookup(b, "rate-limited"), 1) // headers to copy on the 429s, then 200s
	for b.Loop() {
		st.Next()
	}
}

func BenchmarkNextChance(b *testing.B) {
	st := NewState(MustLookup(b, "flaky-30"), 1)
	for b.Loop() {
		st.Next()
	}
}

func BenchmarkNextParallel(b *testing.B) {
	st := NewState(MustLookup(b, "gateway-errors"), 1)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			st.Next()
		}
	})
}
