package outbox

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

const instrumentationName = "github.com/gossipbus/gossip/outbox"

// The relay's metrics. Every one has the attribute gossip.outbox.table.
//
//   - gossip.outbox.relayed (counter, {event}): rows published and marked sent.
//   - gossip.outbox.failures (counter, {failure}): failed publishes and
//     database calls, by error.type ("transport" or "database").
//   - gossip.outbox.dead (counter, {event}): rows set aside as unpublishable.
//   - gossip.outbox.purged (counter, {event}): sent rows deleted after Retention.
//   - gossip.outbox.lag (histogram, s): from a row's write to its confirmed publish.
//   - gossip.outbox.pending.age (gauge, s): the age of the oldest pending
//     row, read from the table when metrics are collected (0 when none).
type relayMetrics struct {
	meter            metric.Meter
	relayed          metric.Int64Counter
	failures         metric.Int64Counter
	dead             metric.Int64Counter
	purged           metric.Int64Counter
	lag              metric.Float64Histogram
	pendingAge       metric.Float64ObservableGauge
	attrs            metric.MeasurementOption
	transportFailure metric.MeasurementOption
	databaseFailure  metric.MeasurementOption
	tableAttr        attribute.KeyValue
}

// AttrTable is the metric attribute naming the outbox table.
const AttrTable = attribute.Key("gossip.outbox.table")

func newRelayMetrics(mp metric.MeterProvider, table string) (*relayMetrics, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := &relayMetrics{meter: mp.Meter(instrumentationName), tableAttr: AttrTable.String(table)}
	m.attrs = metric.WithAttributes(m.tableAttr)
	m.transportFailure = metric.WithAttributes(m.tableAttr, attribute.String("error.type", "transport"))
	m.databaseFailure = metric.WithAttributes(m.tableAttr, attribute.String("error.type", "database"))
	var err error
	counter := func(name, unit, desc string) metric.Int64Counter {
		if err != nil {
			return nil
		}
		var c metric.Int64Counter
		c, err = m.meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		return c
	}
	m.relayed = counter("gossip.outbox.relayed", "{event}", "Outbox rows published and marked sent.")
	m.failures = counter("gossip.outbox.failures", "{failure}", "Failed outbox publishes and database calls.")
	m.dead = counter("gossip.outbox.dead", "{event}", "Outbox rows set aside because the bus refuses them.")
	m.purged = counter("gossip.outbox.purged", "{event}", "Sent outbox rows deleted after the retention time.")
	if err != nil {
		return nil, err
	}
	if m.lag, err = m.meter.Float64Histogram("gossip.outbox.lag", metric.WithUnit("s"),
		metric.WithDescription("Time from an outbox row's write to its confirmed publish.")); err != nil {
		return nil, err
	}
	if m.pendingAge, err = m.meter.Float64ObservableGauge("gossip.outbox.pending.age", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest outbox row not yet published.")); err != nil {
		return nil, err
	}
	return m, nil
}

// observeLag reports the oldest pending row's age while the relay runs; it
// returns the call that stops it.
func (m *relayMetrics) observeLag(o *Outbox) func() {
	reg, err := m.meter.RegisterCallback(func(ctx context.Context, obs metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var args []any
		if o.dialect == SQLite {
			args = []any{time.Now().UnixMicro()}
		}
		var micros int64
		if err := o.db.QueryRowContext(ctx, o.st.lag, args...).Scan(&micros); err != nil {
			return err
		}
		obs.ObserveFloat64(m.pendingAge, float64(micros)/1e6, m.attrs)
		return nil
	}, m.pendingAge)
	if err != nil {
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}
