package queue

import (
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// ConnCollector exposes a NATS connection's state, read from the client at
// each scrape: nothing to keep in step with the connection's handlers.
type ConnCollector struct {
	nc         *nats.Conn
	connected  *prometheus.Desc
	reconnects *prometheus.Desc
}

// NewConnCollector collects nc's state; register it once per connection.
func NewConnCollector(nc *nats.Conn) *ConnCollector {
	return &ConnCollector{
		nc: nc,
		connected: prometheus.NewDesc("invoke_worker_nats_connected",
			"1 while the connection to NATS is up, 0 while it is reconnecting or closed.", nil, nil),
		reconnects: prometheus.NewDesc("invoke_worker_nats_reconnects_total",
			"Reconnections to NATS since the process started.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *ConnCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.connected
	ch <- c.reconnects
}

// Collect implements prometheus.Collector.
func (c *ConnCollector) Collect(ch chan<- prometheus.Metric) {
	up := 0.0
	if c.nc.IsConnected() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(c.reconnects, prometheus.CounterValue, float64(c.nc.Stats().Reconnects))
}
