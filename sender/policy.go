package sender

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Policy is a retry policy: after the first attempt of a delivery fails,
// retry n (1-based) is made Delays[n-1] after the failed attempt ended,
// stretched or shrunk by a uniform random factor in [1-Jitter, 1+Jitter].
// A delivery gets at most 1+len(Delays) attempts.
type Policy struct {
	Name   string          `json:"name"`
	Delays []time.Duration `json:"delays"`
	Jitter float64         `json:"jitter"`
}

// ScheduleStep is one line of a written-down retry schedule.
type ScheduleStep struct {
	Retry      int           // 1-based retry number (attempt Retry+1)
	Delay      time.Duration // nominal wait after the previous attempt
	Cumulative time.Duration // nominal time since the first attempt
}

// Limits on policies read from files.
const (
	maxRetries  = 100
	maxDelay    = 30 * 24 * time.Hour
	maxJitter   = 0.5
	policyLimit = 64 << 10
)

// DefaultPolicy is the "scale" policy: 20 retries, exponential (the first
// 13 s after the first attempt, each 1.5 times the previous, rounded to the
// second), ±10% jitter; the 20th retry comes about 24 h after the first
// attempt.
func DefaultPolicy() Policy {
	d := make([]time.Duration, 20)
	for i := range d {
		secs := math.Round(13 * math.Pow(1.5, float64(i)))
		d[i] = time.Duration(secs) * time.Second
	}
	return Policy{Name: "scale", Delays: d, Jitter: 0.1}
}

// svixDelays is the schedule Svix publishes and the Standard Webhooks spec
// gives as its example: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
func svixDelays() []time.Duration {
	return []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute,
		2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
}

// stripeDelays approximates Stripe's "up to three days with exponential
// backoff": 11 retries, the last one 72 h after the first attempt.
func stripeDelays() []time.Duration {
	return []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour,
		12 * time.Hour, 12 * time.Hour, 20*time.Hour + 24*time.Minute}
}

// PolicyNames lists the built-in presets accepted by ParsePolicy.
func PolicyNames() []string { return []string{"scale", "svix", "stripe", "standard-webhooks"} }

// ParsePolicy returns a preset by name (scale, svix, stripe,
// standard-webhooks) or reads a YAML or JSON policy file at that path. An
// empty string is the default policy.
func ParsePolicy(nameOrFile string) (Policy, error) {
	switch nameOrFile {
	case "", "scale":
		return DefaultPolicy(), nil
	case "svix":
		return Policy{Name: "svix", Delays: svixDelays(), Jitter: 0.05}, nil
	case "standard-webhooks":
		return Policy{Name: "standard-webhooks", Delays: svixDelays(), Jitter: 0.05}, nil
	case "stripe":
		return Policy{Name: "stripe", Delays: stripeDelays(), Jitter: 0.1}, nil
	}
	f, err := os.Open(nameOrFile)
	if err != nil {
		return Policy{}, fmt.Errorf("retry policy %q is neither a preset (%s) nor a readable file: %w",
			nameOrFile, strings.Join(PolicyNames(), ", "), err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, policyLimit+1)); err != nil {
		return Policy{}, fmt.Errorf("read retry policy %s: %w", nameOrFile, err)
	}
	if buf.Len() > policyLimit {
		return Policy{}, fmt.Errorf("retry policy %s: file larger than %d bytes: %w", nameOrFile, policyLimit, ErrBadPolicy)
	}
	p, err := DecodePolicy(buf.Bytes())
	if err != nil {
		return Policy{}, fmt.Errorf("retry policy %s: %w", nameOrFile, err)
	}
	return p, nil
}

// policyFile is the on-disk form of a policy:
//
//	name: my-policy
//	delays: [5s, 1m, 10m, 1h]   # one Go duration per retry
//	jitter: 0.1                 # optional, 0..0.5
type policyFile struct {
	Name   string   `yaml:"name" json:"name"`
	Delays []string `yaml:"delays" json:"delays"`
	Jitter *float64 `yaml:"jitter" json:"jitter"`
}

// DecodePolicy parses a policy written in YAML or JSON (JSON is YAML).
// Unknown fields, bad durations and out-of-range values are errors naming
// the field.
func DecodePolicy(data []byte) (Policy, error) {
	var pf policyFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&pf); err != nil {
		if errors.Is(err, io.EOF) {
			return Policy{}, fmt.Errorf("%w: the file is empty: want name, delays (a list of durations) and jitter", ErrBadPolicy)
		}
		return Policy{}, fmt.Errorf("%w: %w", ErrBadPolicy, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return Policy{}, fmt.Errorf("%w: more than one YAML document (---): a policy file holds one", ErrBadPolicy)
	}
	p := Policy{Name: strings.TrimSpace(pf.Name), Jitter: 0}
	if p.Name == "" {
		p.Name = "custom"
	}
	if pf.Delays == nil {
		return Policy{}, fmt.Errorf("%w: delays: required (a list of durations, one per retry; [] for none)", ErrBadPolicy)
	}
	if len(pf.Delays) > maxRetries {
		return Policy{}, fmt.Errorf("%w: delays: %d retries, at most %d", ErrBadPolicy, len(pf.Delays), maxRetries)
	}
	p.Delays = make([]time.Duration, 0, len(pf.Delays))
	for i, s := range pf.Delays {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return Policy{}, fmt.Errorf("%w: delays[%d]: %q is not a duration like 30s or 2h", ErrBadPolicy, i, s)
		}
		if d <= 0 || d > maxDelay {
			return Policy{}, fmt.Errorf("%w: delays[%d]: %s out of range (0, %s]", ErrBadPolicy, i, d, maxDelay)
		}
		p.Delays = append(p.Delays, d)
	}
	if pf.Jitter != nil {
		j := *pf.Jitter
		if !(j >= 0 && j <= maxJitter) {
			return Policy{}, fmt.Errorf("%w: jitter: %v out of range [0, %v]", ErrBadPolicy, j, maxJitter)
		}
		p.Jitter = j
	}
	return p, nil
}

// isZero reports whether p is the zero Policy (meaning "use the default").
func (p Policy) isZero() bool { return p.Name == "" && p.Delays == nil && p.Jitter == 0 }

// MaxAttempts is the number of attempts a delivery may get: 1 + retries.
func (p Policy) MaxAttempts() int { return 1 + len(p.Delays) }

// Delay returns the wait before retry n (1-based) for a uniform random u in
// [0,1); ok is false when the policy has no retry n.
func (p Policy) Delay(n int, u float64) (d time.Duration, ok bool) {
	if n < 1 || n > len(p.Delays) {
		return 0, false
	}
	base := float64(p.Delays[n-1])
	f := 1 + p.Jitter*(2*u-1)
	return time.Duration(base * f), true
}

// Schedule writes the policy down: each retry with its nominal delay and
// nominal time since the first attempt (jitter and latency not included).
func (p Policy) Schedule() []ScheduleStep {
	out := make([]ScheduleStep, len(p.Delays))
	var cum time.Duration
	for i, d := range p.Delays {
		cum += d
		out[i] = ScheduleStep{Retry: i + 1, Delay: d, Cumulative: cum}
	}
	return out
}

// MarshalJSON writes delays as Go duration strings.
func (p Policy) MarshalJSON() ([]byte, error) {
	ds := make([]string, len(p.Delays))
	for i, d := range p.Delays {
		ds[i] = d.String()
	}
	return json.Marshal(struct {
		Name   string   `json:"name"`
		Delays []string `json:"delays"`
		Jitter float64  `json:"jitter"`
	}{p.Name, ds, p.Jitter})
}
