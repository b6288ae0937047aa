// Package router routes events from sources to destinations. A route reads
// one source, keeps the events its Filter selects and delivers each of them
// to every destination, with retries and a dead letter; routes come from
// the YAML file that LoadRoutes reads.
package router
