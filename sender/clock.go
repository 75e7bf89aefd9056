package sender

import (
	"fmt"
	"sync"
	"time"
)

// Clock is the sender's sense of time. Due times, backoff delays and the
// auto-complete delay are measured on it; per-attempt timeouts and latencies
// are measured in real time.
type Clock interface {
	// Now returns the current time on this clock.
	Now() time.Time
	// NewTimer returns a timer that fires once the clock has advanced by d.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	// C delivers the clock time once the timer fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it stopped it.
	Stop() bool
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer returns a time.Timer.
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// ScaledClock runs Scale times faster than the wall clock: at Scale 3600 one
// real second is one clock hour. It starts at the wall time it was made.
type ScaledClock struct {
	Scale float64

	mu        sync.Mutex
	realStart time.Time
	clockBase time.Time
}

// NewScaledClock returns a clock running scale times faster than real time.
// A scale of 1 behaves like the wall clock.
func NewScaledClock(scale float64) (*ScaledClock, error) {
	if !(scale >= 1) || scale > 1e9 {
		return nil, fmt.Errorf("time scale %v: %w", scale, ErrBadScale)
	}
	now := time.Now()
	return &ScaledClock{Scale: scale, realStart: now, clockBase: now}, nil
}

// nowLocked returns the scaled time; a ScaledClock made without
// NewScaledClock starts at its first use, and a Scale below 1 counts as 1.
func (c *ScaledClock) nowLocked() time.Time {
	if c.realStart.IsZero() {
		c.realStart = time.Now()
		c.clockBase = c.realStart
	}
	return c.clockBase.Add(time.Duration(float64(time.Since(c.realStart)) * c.scale()))
}

func (c *ScaledClock) scale() float64 {
	if !(c.Scale >= 1) {
		return 1
	}
	return c.Scale
}

// Now returns the scaled time.
func (c *ScaledClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked()
}

// NewTimer fires after d of clock time, that is d/Scale of real time.
func (c *ScaledClock) NewTimer(d time.Duration) Timer {
	if d < 0 {
		d = 0
	}
	return realTimer{time.NewTimer(time.Duration(float64(d) / c.scale()))}
}

// Resume moves the clock forward to t if it is behind it, so that a scaled
// clock restarted after a previous run (whose scaled time ran ahead of the
// wall clock) carries on from where the stored data left off.
func (c *ScaledClock) Resume(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.nowLocked(); t.After(now) {
		c.clockBase = c.clockBase.Add(t.Sub(now))
	}
}

// resumer is implemented by clocks that can be moved forward to the newest
// time found in the database (see ScaledClock.Resume).
type resumer interface{ Resume(time.Time) }
