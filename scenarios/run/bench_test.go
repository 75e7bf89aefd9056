package run

import (
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// BenchmarkParse parses the largest example run file; the baseline
// decodes the same bytes into a yaml.Node only, so the ratio of the two is
// the cost of the checks on top of YAML itself.
func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "examples", "run", "gone-410.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("yaml-node-baseline", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var n yaml.Node
			if err := yaml.Unmarshal(data, &n); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := parse(data, "", noRead); err != nil {
				b.Fatal(err)
			}
		}
	})
}
