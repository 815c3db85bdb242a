module github.com/tapedeck/tapedeck/test/goari

go 1.26.0

require github.com/CyCoreSystems/ari/v5 v5.3.0

require (
	github.com/go-stack/stack v1.8.0 // indirect
	github.com/gogo/protobuf v1.3.2 // indirect
	github.com/inconshreveable/log15 v0.0.0-20201112154412-8562bdadbbac // indirect
	github.com/mattn/go-colorable v0.1.8 // indirect
	github.com/mattn/go-isatty v0.0.12 // indirect
	github.com/oklog/ulid v1.3.1 // indirect
	github.com/rotisserie/eris v0.4.1 // indirect
	golang.org/x/net v0.63.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
