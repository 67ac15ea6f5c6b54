// Package removeexample holds the test of the README's "Start your own
// service": on a clone of the repository it runs the README's commands as
// written (make remove-example, a schema of its own from testdata/tickets,
// make generate, make verify, go build, cmd/migrate up, the sample service)
// and checks what make remove-example leaves, the Go types sqlc generates,
// the service's output and the rows it writes. Nothing imports it.
package removeexample
