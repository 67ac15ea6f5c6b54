// Package removeexample holds the test of make remove-example
// (tools/remove-example.sh): it takes the example application out of a copy
// of the repository and checks that the kit left behind still generates,
// builds and vets. Nothing imports it.
package removeexample
