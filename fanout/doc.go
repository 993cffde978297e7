// Package fanout owns fan-out routes: reading an event stream with a
// durable consumer per route and turning every event into one job per
// function, each with a dedupe id derived from the event
// (<route>-<stream>-<seq>-<n>), so an event delivered again never enqueues
// a job twice; an event is acknowledged only once JetStream acknowledged
// every one of its jobs. It maps event headers onto job headers and, for
// the cloudevent intent, turns any event into a structured CloudEvent.
//
// It does not invoke anything: the jobs it publishes are ordinary jobs,
// run by the worker like any other.
package fanout
