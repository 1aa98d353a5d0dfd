// Package controls runs the orchestrator's controls over the reasoning step:
// the CC3.4 token baseline (per agent, answering model and prompt template
// version, in tokens per input item, with robust statistics and alerts for
// spikes, level shifts, rising truncation and a changed answering model) and
// the CC7.2 anomaly record (injection hits, discarded answers, canary leaks,
// calls from unexpected identities, denied RPCs).
package controls

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Key identifies one token baseline.
type Key struct {
	Agent, Provider, ResponseModel, TemplateVersion string
}

func (k Key) String() string {
	return k.Agent + "/" + k.Provider + "/" + k.ResponseModel + "/" + k.TemplateVersion
}

// Sample is one audit's token usage under one key.
type Sample struct {
	Key          Key
	RequestModel string
	AuditID      string
	Time         time.Time
	// PerItem is input plus output tokens per finding or subject sent.
	PerItem float64
	// Calls and Truncated count the audit's calls and those cut off by length.
	Calls, Truncated int
}

// Thresholds tune the baseline. The zero value is replaced by Defaults.
type Thresholds struct {
	// WarmUp is the number of samples a key needs before it alerts.
	WarmUp int
	// Window is how many recent samples the statistics use.
	Window int
	// Spike is the modified z-score above which one audit is a spike.
	Spike float64
	// SpikeRatio is the least relative distance from the median a spike
	// needs as well: small audits are noisy per item, and a statistically
	// unusual but small move is not worth an alert.
	SpikeRatio float64
	// Shift is the EWMA deviation, in robust standard deviations, of a level shift.
	Shift float64
	// ShiftRatio is the least relative move of the EWMA a level shift needs.
	ShiftRatio float64
	// Alpha is the EWMA smoothing factor.
	Alpha float64
	// TruncationRecent is how many samples the recent truncation rate covers.
	TruncationRecent int
	// TruncationRate is the least recent rate that can alert.
	TruncationRate float64
}

// Defaults are the thresholds in use unless configured otherwise.
var Defaults = Thresholds{WarmUp: 10, Window: 100, Spike: 3.5, SpikeRatio: 0.5, Shift: 3, ShiftRatio: 0.2, Alpha: 0.3, TruncationRecent: 5, TruncationRate: 0.2}

// Stats are a key's statistics over its history.
type Stats struct {
	Samples   int
	Warm      bool
	Median    float64
	MAD       float64
	EWMA      float64
	EWMAStd   float64
	TruncRate float64
}

// AlertKind says what an alert is about.
type AlertKind int

// Alert kinds.
const (
	Spike AlertKind = iota + 1
	LevelShift
	Truncation
	ModelChange
)

// Alert is one finding of the baseline.
type Alert struct {
	Kind     AlertKind
	Value    float64
	Baseline float64
	Score    float64
	Message  string
}

// madScale turns a MAD into a standard deviation for normal data.
const madScale = 1.4826

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func mad(xs []float64, m float64) float64 {
	dev := make([]float64, len(xs))
	for i, x := range xs {
		dev[i] = math.Abs(x - m)
	}
	d := median(dev)
	// A perfectly flat history has no spread; keep a floor of 1% of the
	// level so that any change does not read as infinitely unlikely.
	return math.Max(d, 0.01*math.Abs(m)+1e-9)
}

// modZ is the robust modified z-score (Iglewicz and Hoaglin).
func modZ(x, m, d float64) float64 { return 0.6745 * (x - m) / d }

// compute returns the statistics of history (oldest first).
func (t Thresholds) compute(history []Sample) Stats {
	if len(history) > t.Window {
		history = history[len(history)-t.Window:]
	}
	xs := make([]float64, len(history))
	for i, s := range history {
		xs[i] = s.PerItem
	}
	st := Stats{Samples: len(history), Warm: len(history) >= t.WarmUp}
	st.Median = median(xs)
	st.MAD = mad(xs, st.Median)
	// EWMA of level and variance, seeded with the median.
	mean, variance := st.Median, math.Pow(madScale*st.MAD, 2)
	for _, x := range xs {
		d := x - mean
		mean += t.Alpha * d
		variance = (1 - t.Alpha) * (variance + t.Alpha*d*d)
	}
	st.EWMA, st.EWMAStd = mean, math.Sqrt(variance)
	calls, trunc := 0, 0
	for _, s := range history {
		calls += s.Calls
		trunc += s.Truncated
	}
	if calls > 0 {
		st.TruncRate = float64(trunc) / float64(calls)
	}
	return st
}

// Evaluate checks sample x against history (oldest first, x excluded) and
// returns the statistics including x and the alerts x raises. It is pure.
func (t Thresholds) Evaluate(history []Sample, x Sample) (Stats, []Alert) {
	if len(history) > t.Window {
		history = history[len(history)-t.Window:]
	}
	before := t.compute(history)
	all := append(slices.Clone(history), x)
	after := t.compute(all)
	if !before.Warm {
		return after, nil
	}
	var alerts []Alert
	if z := modZ(x.PerItem, before.Median, before.MAD); math.Abs(z) > t.Spike && math.Abs(x.PerItem-before.Median) > t.SpikeRatio*before.Median {
		alerts = append(alerts, Alert{Kind: Spike, Value: x.PerItem, Baseline: before.Median, Score: z,
			Message: fmt.Sprintf("%.1f tokens per item against a median of %.1f (modified z %.1f > %.1f)", x.PerItem, before.Median, z, t.Spike)})
	}
	if t.shifted(all) && !t.shifted(history) {
		score := (after.EWMA - before.Median) / (madScale * before.MAD)
		alerts = append(alerts, Alert{Kind: LevelShift, Value: after.EWMA, Baseline: before.Median, Score: score,
			Message: fmt.Sprintf("sustained level shift: EWMA %.1f tokens per item against a median of %.1f (%.1f robust standard deviations)", after.EWMA, before.Median, score)})
	}
	if rate, ok := t.truncating(all); ok {
		if _, was := t.truncating(history); !was {
			alerts = append(alerts, Alert{Kind: Truncation, Value: rate, Baseline: before.TruncRate, Score: rate,
				Message: fmt.Sprintf("%.0f%% of the last %d audits' answers were cut off by the token limit (%.0f%% before)", 100*rate, t.TruncationRecent, 100*before.TruncRate)})
		}
	}
	return after, alerts
}

// shifted reports whether the end of series shows a sustained shift: the
// EWMA is Shift robust deviations off the reference median and at least
// three of the last five samples sit on the same side beyond two. The
// reference is the series before its last five samples.
func (t Thresholds) shifted(series []Sample) bool {
	const recent = 5
	if len(series) < t.WarmUp+recent {
		return false
	}
	ref := t.compute(series[:len(series)-recent])
	sigma := madScale * ref.MAD
	mean := ref.Median
	for _, s := range series[len(series)-recent:] {
		mean += t.Alpha * (s.PerItem - mean)
	}
	dev := (mean - ref.Median) / sigma
	if math.Abs(dev) <= t.Shift || math.Abs(mean-ref.Median) <= t.ShiftRatio*ref.Median {
		return false
	}
	same := 0
	for _, s := range series[len(series)-recent:] {
		if z := modZ(s.PerItem, ref.Median, ref.MAD); z*dev > 0 && math.Abs(z) > 2 {
			same++
		}
	}
	return same >= 3
}

// minTruncCalls and minTruncated keep a handful of calls from making a rate.
const (
	minTruncCalls = 10
	minTruncated  = 3
)

// truncating returns the recent truncation rate and whether it is rising:
// at least TruncationRate and at least twice the earlier rate plus 5 points.
// The recent window is the last TruncationRecent samples, widened until it
// holds at least minTruncCalls calls.
func (t Thresholds) truncating(series []Sample) (float64, bool) {
	calls, trunc, n := 0, 0, 0
	for i := len(series) - 1; i >= 0 && (n < t.TruncationRecent || calls < minTruncCalls); i-- {
		calls += series[i].Calls
		trunc += series[i].Truncated
		n++
	}
	if len(series)-n < t.WarmUp || calls < minTruncCalls || trunc < minTruncated {
		return 0, false
	}
	earlier := t.compute(series[:len(series)-n])
	rate := float64(trunc) / float64(calls)
	return rate, rate >= t.TruncationRate && rate >= 2*earlier.TruncRate+0.05
}

// normalized returns t with zero fields replaced by Defaults.
func (t Thresholds) normalized() Thresholds {
	d := Defaults
	if t.WarmUp > 0 {
		d.WarmUp = t.WarmUp
	}
	if t.Window > 0 {
		d.Window = t.Window
	}
	if t.Spike > 0 {
		d.Spike = t.Spike
	}
	if t.Shift > 0 {
		d.Shift = t.Shift
	}
	if t.SpikeRatio > 0 {
		d.SpikeRatio = t.SpikeRatio
	}
	if t.ShiftRatio > 0 {
		d.ShiftRatio = t.ShiftRatio
	}
	if t.Alpha > 0 {
		d.Alpha = t.Alpha
	}
	if t.TruncationRecent > 0 {
		d.TruncationRecent = t.TruncationRecent
	}
	if t.TruncationRate > 0 {
		d.TruncationRate = t.TruncationRate
	}
	return d
}
