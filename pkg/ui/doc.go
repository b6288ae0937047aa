// Package ui serves the audit explorer: the web page under /ui/ that shows
// the daemon's event rates, searches the audit store, shows an event's
// versions and trail, redrives dead letters and follows replay jobs.
//
// The page is plain HTML, CSS and JavaScript modules embedded in the
// binary; it makes no request beyond the daemon's own API (GET
// /v1/events, GET /v1/events/{id}, GET /v1/counts, GET /v1/replays, POST
// /v1/redrives, DELETE /v1/replays/{id}, GET /v1/ledger/checkpoint). Its
// URLs are the API's: /ui/events?type=com.example.*&route=billing lists
// what GET /v1/events?type=com.example.*&route=billing answers.
//
// Every answer carries a Content-Security-Policy that allows scripts,
// styles and connections to this origin only and no framing, with
// X-Content-Type-Options: nosniff. The charting library, uPlot, is
// vendored under assets/vendor/uplot with its license and version.
package ui
