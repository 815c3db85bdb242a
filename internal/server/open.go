package server

import (
	"context"
	"fmt"
	"os"

	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/config"
)

// OpenCatalog opens the recordings catalog (database and file store) of a
// configuration without starting a server, for the command line. close
// releases it.
func OpenCatalog(ctx context.Context, cfg config.Config) (svc *catalog.Service, close func(), err error) {
	if _, err := os.Stat(cfg.DataDir); err == nil {
		if err := config.ResolveNodeID(&cfg); err != nil {
			return nil, nil, fmt.Errorf("node id: %w", err)
		}
	}
	ms, err := OpenMeta(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	bs, err := openBlob(cfg)
	if err != nil {
		ms.Close()
		return nil, nil, fmt.Errorf("S3: %w", err)
	}
	svc = &catalog.Service{Meta: ms, Blob: bs, Root: cfg.RecordingsDir(), Node: cfg.NodeID}
	return svc, func() { svc.Close(); ms.Close() }, nil
}
