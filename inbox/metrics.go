package inbox

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Prometheus collectors of the capture path.
type Metrics struct {
	Captures       *prometheus.CounterVec // by kind
	Bytes          *prometheus.CounterVec // body bytes kept, by kind
	Truncated      prometheus.Counter
	CaptureLatency prometheus.Histogram // request start to commit
	BatchSize      prometheus.Histogram // captures per committed transaction
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Captures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callbin_captures_total", Help: "Captures stored, by kind.",
		}, []string{"kind"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callbin_capture_bytes_total", Help: "Body bytes stored, by kind.",
		}, []string{"kind"}),
		Truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callbin_captures_truncated_total", Help: "Captures whose body was over the limit.",
		}),
		CaptureLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "callbin_capture_duration_seconds",
			Help:    "Time from the start of a capture to its commit.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "callbin_capture_batch_size",
			Help:    "Captures committed per transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
	}
	reg.MustRegister(m.Captures, m.Bytes, m.Truncated, m.CaptureLatency, m.BatchSize)
	return m
}
