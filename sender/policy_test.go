package sender

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestDefaultSchedule(t *testing.T) {
	p := DefaultPolicy()
	s := p.Schedule()
	if len(s) != 20 || p.MaxAttempts() != 21 {
		t.Fatalf("default policy: got %d retries (%d attempts), want 20 (21)", len(s), p.MaxAttempts())
	}
	for i := 1; i < len(s); i++ {
		if s[i].Delay <= s[i-1].Delay {
			t.Fatalf("retry %d: got delay %s after %s, want it growing", i+1, s[i].Delay, s[i-1].Delay)
		}
	}
	last := s[19].Cumulative
	if last < 23*time.Hour+30*time.Minute || last > 24*time.Hour+30*time.Minute {
		t.Fatalf("20th retry: got %s after the first attempt, want about 24h", last)
	}
	var b strings.Builder
	b.WriteString("| retry | delay | since first attempt |\n|---:|---:|---:|\n")
	for _, st := range s {
		b.WriteString("| " + itoa(st.Retry) + " | " + st.Delay.String() + " | " + st.Cumulative.String() + " |\n")
	}
	t.Logf("default schedule (±%.0f%% jitter per delay):\n%s", p.Jitter*100, b.String())
}

func TestPolicyDelayJitter(t *testing.T) {
	p := Policy{Delays: []time.Duration{100 * time.Second}, Jitter: 0.1}
	for _, tc := range []struct {
		u    float64
		want time.Duration
	}{{0, 90 * time.Second}, {0.5, 100 * time.Second}, {0.999999, 110 * time.Second}} {
		d, ok := p.Delay(1, tc.u)
		if !ok || d < tc.want-time.Millisecond || d > tc.want+time.Millisecond {
			t.Fatalf("Delay(1, %v): got %s %v, want %s", tc.u, d, ok, tc.want)
		}
	}
	if _, ok := p.Delay(2, 0.5); ok {
		t.Fatal("Delay(2): got ok, want no such retry")
	}
	if _, ok := p.Delay(0, 0.5); ok {
		t.Fatal("Delay(0): got ok, want no such retry")
	}
}

func TestParsePolicy(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		arg     string
		name    string
		retries int
		last    time.Duration // cumulative of the last retry
		err     string
	}{
		{"", "scale", 20, 0, ""},
		{"scale", "scale", 20, 0, ""},
		{"svix", "svix", 7, 27*time.Hour + 35*time.Minute + 5*time.Second, ""},
		{"standard-webhooks", "standard-webhooks", 7, 27*time.Hour + 35*time.Minute + 5*time.Second, ""},
		{"stripe", "stripe", 11, 72 * time.Hour, ""},
		{write("p.yaml", "name: quick\ndelays: [1s, 2s, 1m]\njitter: 0.2\n"), "quick", 3, time.Minute + 3*time.Second, ""},
		{write("p.json", `{"delays": ["5s"], "jitter": 0}`), "custom", 1, 5 * time.Second, ""},
		{write("none.yaml", "delays: []\n"), "custom", 0, 0, ""},
		{write("bad1.yaml", "delays: [soon]\n"), "", 0, 0, "delays[0]"},
		{write("bad2.yaml", "delays: [-1s]\n"), "", 0, 0, "delays[0]"},
		{write("bad3.yaml", "delays: [1s]\njitter: 2\n"), "", 0, 0, "jitter"},
		{write("bad4.yaml", "delay: [1s]\n"), "", 0, 0, "delay"},
		{write("bad5.yaml", "name: x\n"), "", 0, 0, "delays: required"},
		{write("bad6.yaml", "delays: [1s, [2s]]\n"), "", 0, 0, "bad retry policy"},
		{write("empty.yaml", ""), "", 0, 0, "the file is empty"},
		{write("comment.yaml", "# nothing yet\n"), "", 0, 0, "the file is empty"},
		{write("two.yaml", "delays: [1s]\n---\ndelays: [2s]\nbogus: 1\n"), "", 0, 0, "more than one YAML document"},
		{filepath.Join(dir, "missing.yaml"), "", 0, 0, "neither a preset"},
		{"fast", "", 0, 0, "neither a preset"},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.arg), func(t *testing.T) {
			p, err := ParsePolicy(tc.arg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != tc.name || len(p.Delays) != tc.retries {
				t.Fatalf("got %s with %d retries, want %s with %d", p.Name, len(p.Delays), tc.name, tc.retries)
			}
			if s := p.Schedule(); tc.last != 0 && s[len(s)-1].Cumulative != tc.last {
				t.Fatalf("last retry: got %s after the first attempt, want %s", s[len(s)-1].Cumulative, tc.last)
			}
		})
	}
	if _, err := ParsePolicy(write("big.yaml", strings.Repeat("#", policyLimit+10))); !errors.Is(err, ErrBadPolicy) {
		t.Fatalf("oversized file: got %v, want ErrBadPolicy", err)
	}
}

func FuzzDecodePolicy(f *testing.F) {
	f.Add([]byte("name: x\ndelays: [1s, 2m]\njitter: 0.1\n"))
	f.Add([]byte(`{"delays": ["5s"]}`))
	f.Add([]byte("delays: [1h, 1h, 1h]\n"))
	f.Add([]byte("delays: [0s]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodePolicy(data)
		if err != nil {
			if !errors.Is(err, ErrBadPolicy) {
				t.Fatalf("got error %v, want it to wrap ErrBadPolicy", err)
			}
			return
		}
		if len(p.Delays) > maxRetries || p.Jitter < 0 || p.Jitter > maxJitter || p.Name == "" {
			t.Fatalf("accepted an out-of-range policy: %+v", p)
		}
		for _, d := range p.Delays {
			if d <= 0 || d > maxDelay {
				t.Fatalf("accepted delay %s", d)
			}
		}
		if b, err := json.Marshal(p); err != nil || !json.Valid(b) {
			t.Fatalf("marshal: %v", err)
		}
	})
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" = error
	}{
		{"http://127.0.0.1:8080/b/x", "http://127.0.0.1:8080/b/x"},
		{"HTTPS://example.com/hook?a=1", "https://example.com/hook?a=1"},
		{"hook@example.com", "mailto:hook@example.com"},
		{"mailto:hook@example.com", "mailto:hook@example.com"},
		{"mailto:hook%40example.com", "mailto:hook@example.com"},
		{"ftp://example.com/x", ""},
		{"javascript:alert(1)", ""},
		{"http://", ""},
		{"http://user:pw@example.com/", ""},
		{"example.com/hook", ""},
		{"Bob <bob@example.com>", ""},
		{"", ""},
		{"mailto:", ""},
	} {
		got, err := parseTarget(tc.in)
		if tc.want == "" {
			if err == nil || !errors.Is(err, ErrBadTarget) {
				t.Fatalf("parseTarget(%q): got %v %v, want ErrBadTarget", tc.in, got, err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Fatalf("parseTarget(%q): got %q %v, want %q", tc.in, got.String(), err, tc.want)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"http://a/b", "a@b", "mailto:a@b?subject=x", "ftp://x", "\x00@\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := parseTarget(s)
		if err != nil {
			if !errors.Is(err, ErrBadTarget) {
				t.Fatalf("got %v, want ErrBadTarget", err)
			}
			return
		}
		if (tg.URL == "") == (tg.Email == "") {
			t.Fatalf("parseTarget(%q): got %+v, want exactly one of URL and Email", s, tg)
		}
		again, err := parseTarget(tg.String())
		if err != nil || again != tg {
			t.Fatalf("round trip of %q: got %+v %v, want %+v", tg.String(), again, err, tg)
		}
	})
}

func FuzzParseCreate(f *testing.F) {
	f.Add("categorization", []byte(`{"attachment_type":"text","attachment":"x","categories":["a"]}`))
	f.Add("generic", []byte(`{"params":{"a":1},"metadata":{},"unique_id":"u"}`))
	f.Add("categorization", []byte(`{"categories":"a"}`))
	f.Add("x", []byte(`[]`))
	f.Fuzz(func(t *testing.T, typ string, body []byte) {
		in, targetErr, err := parseCreate(typ, body)
		if targetErr != nil || err != nil {
			for _, e := range []error{targetErr, err} {
				if e != nil && !errors.Is(e, ErrInvalid) && !errors.Is(e, ErrUnknownType) {
					t.Fatalf("got error %v, want ErrInvalid or ErrUnknownType", e)
				}
			}
			return
		}
		if !json.Valid(in.Params) || !isObject(in.Params) || !json.Valid(in.Metadata) || !isObject(in.Metadata) {
			t.Fatalf("accepted params %q metadata %q, want JSON objects", in.Params, in.Metadata)
		}
		task := &Task{TaskID: "t", Type: in.Type, Params: in.Params, Metadata: in.Metadata, Status: StatusCompleted}
		task.Response = plausibleResponse(task)
		if _, err := payloadFor(task); err != nil {
			t.Fatalf("payload: %v", err)
		}
	})
}

// TestSignatureMatchesReference signs with our code and checks with the
// Standard Webhooks reference library, both ways.
func TestSignatureMatchesReference(t *testing.T) {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	ts := time.Unix(1614265330, 0)
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	want, err := wh.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts.Unix(), body)
	if err != nil || got != want {
		t.Fatalf("signature: got %q %v, want %q", got, err, want)
	}
	for _, bad := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_***", "whsec_YQ=="} {
		if _, err := signature(bad, "m", 1, body); !errors.Is(err, ErrInvalid) {
			t.Fatalf("signature with secret %q: got %v, want ErrInvalid", bad, err)
		}
	}
}

func TestScaledClock(t *testing.T) {
	for _, bad := range []float64{0, 0.5, -1, 2e9} {
		if _, err := NewScaledClock(bad); !errors.Is(err, ErrBadScale) {
			t.Fatalf("NewScaledClock(%v): got %v, want ErrBadScale", bad, err)
		}
	}
	c, err := NewScaledClock(3600)
	if err != nil {
		t.Fatal(err)
	}
	t0 := c.Now()
	tm := c.NewTimer(time.Hour) // one real second
	defer tm.Stop()
	start := time.Now()
	time.Sleep(20 * time.Millisecond)
	if d := c.Now().Sub(t0); d < 60*time.Second || d > 10*time.Minute {
		t.Fatalf("after 20ms at 3600x: got %s of clock time, want about 72s", d)
	}
	select {
	case <-tm.C():
		t.Fatalf("timer for 1 clock hour fired after %s of real time, want about 1s", time.Since(start))
	default:
	}
	ahead := c.Now().Add(48 * time.Hour)
	c.Resume(ahead)
	if got := c.Now(); got.Before(ahead) {
		t.Fatalf("Resume: got %s, want at or after %s", got, ahead)
	}
	c.Resume(t0) // never backwards
	if got := c.Now(); got.Before(ahead) {
		t.Fatalf("Resume backwards: got %s, want at or after %s", got, ahead)
	}
	var zero ScaledClock // made without NewScaledClock: starts now, scale 1
	if d := zero.Now().Sub(time.Now()); d > time.Second || d < -time.Second {
		t.Fatalf("zero ScaledClock: got %s off the wall clock, want about 0", d)
	}
}
