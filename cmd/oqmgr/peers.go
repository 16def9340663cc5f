package main

import (
	"context"

	"oqmgr-go/conf"
	"oqmgr-go/sched"
	"oqmgr-go/transport"
)

// peers connects the scheduler to the other Postfix daemons with the
// timeouts the C queue manager uses: qmgr_ipc_timeout for its own IPC,
// daemon_timeout while an agent delivers, and the fixed 1000 s of its
// asynchronous bounce, defer and trace notices.
type peers struct {
	queueDir string
	cfg      *conf.Config
}

func (p *peers) OpenAgent(transportName string) (sched.Agent, error) {
	agent, err := transport.OpenAgent(p.queueDir, transportName, p.cfg.DaemonTimeout)
	if err != nil {
		return nil, err
	}
	return agent, nil
}

func (p *peers) Notify(ctx context.Context, service string, req transport.NotifyRequest) (int, error) {
	return transport.Notify(ctx, p.queueDir, service, req, transport.NoticeTimeout)
}

func (p *peers) DeferAppend(ctx context.Context, flags int, queueID string, rcpt transport.RequestRecipient, dsn transport.DSN) (int, error) {
	return transport.DeferAppend(ctx, p.queueDir, p.cfg.DeferServiceName, flags, queueID, rcpt, dsn, p.cfg.QmgrIPCTimeout)
}

// rewriteClient adapts the trivial-rewrite client to the loop's Resolver interface.
type rewriteClient struct {
	*transport.Resolver
}

func (c rewriteClient) Batch(ctx context.Context, depth int) sched.ResolveBatch {
	return c.Resolver.Batch(ctx, depth)
}
