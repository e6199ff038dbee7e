package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// startTimeout bounds how long "up" waits for the cluster to become usable.
const startTimeout = 90 * time.Second

func up(args []string) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	dataDir := fs.String("data-dir", "", "directory for etcd data, PKI, logs and the kubeconfig (required)")
	nodeName := fs.String("node-name", "fluxd-node", "name of the simulated node")
	watchStdin := fs.Bool("exit-on-stdin-close", false,
		"shut down when stdin reaches EOF, i.e. when the launching process dies, even by SIGKILL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" {
		return errors.New("--data-dir is required")
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	began := time.Now()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *watchStdin {
		ctx = stopOnStdinEOF(ctx)
	}

	pki, err := writePKI(dir)
	if err != nil {
		return fmt.Errorf("writing PKI: %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdURL, apiPort := "http://127.0.0.1:"+ports[0], ports[2]

	etcd, err := startEtcd(filepath.Join(dir, "etcd"), etcdURL, "http://127.0.0.1:"+ports[1])
	if err != nil {
		return fmt.Errorf("starting etcd: %w", err)
	}
	defer etcd.Close()
	etcdReady := time.Since(began)

	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, "https://127.0.0.1:"+apiPort, pki); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}

	// The controller-manager and the scheduler start at once: they retry until
	// the apiserver answers, which overlaps their start-up with its own.
	procs := []*child{
		{name: "kube-apiserver", args: []string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port=" + apiPort,
			"--cert-dir=" + filepath.Join(dir, "apiserver"),
			"--tls-cert-file=" + pki.serverCert,
			"--tls-private-key-file=" + pki.serverKey,
			"--client-ca-file=" + pki.caCert,
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + pki.saPub,
			"--service-account-signing-key-file=" + pki.saKey,
			"--service-cluster-ip-range=10.0.0.0/24",
			"--authorization-mode=RBAC",
			"--allow-privileged=true",
			// The apiserver would publish its own address, 127.0.0.1, as the
			// endpoint of Service "kubernetes"; Endpoints validation rejects
			// loopback addresses, so that reconciler only logs errors here.
			"--endpoint-reconciler-type=none",
			"--profiling=false",
		}},
		{name: "kube-controller-manager", args: []string{
			"--kubeconfig=" + kubeconfig,
			"--leader-elect=false",
			"--secure-port=0", // no health endpoint needed; saves a port and a TLS setup
			"--service-account-private-key-file=" + pki.saKey,
			"--root-ca-file=" + pki.caCert,
			"--profiling=false",
		}},
		{name: "kube-scheduler", args: []string{
			"--kubeconfig=" + kubeconfig,
			"--leader-elect=false",
			"--secure-port=0",
			"--profiling=false",
		}},
	}
	exited := make(chan string, len(procs))
	defer stopChildren(procs)
	for _, p := range procs {
		if err := p.start(dir, exited); err != nil {
			return err
		}
	}

	// From here on, any child dying is fatal: report it instead of waiting
	// for the deadline.
	waitCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	go func() {
		select {
		case name := <-exited:
			fmt.Fprintf(os.Stderr, "fluxd-controlplane: %s exited during start-up; see %s\n",
				name, filepath.Join(dir, "logs", name+".log"))
			exited <- name // let the main loop below see it too
			cancel()
		case <-waitCtx.Done():
		}
	}()

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 100, 200
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := poll(waitCtx, "apiserver /readyz", func(ctx context.Context) (bool, error) {
		_, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil, nil
	}); err != nil {
		return err
	}
	apiReady := time.Since(began)
	sim := &simulator{client: client, node: *nodeName}
	if err := sim.registerNode(waitCtx); err != nil {
		return fmt.Errorf("registering node %s: %w", *nodeName, err)
	}
	go sim.run(ctx)
	// The "default" ServiceAccount is created by the controller-manager; the
	// ServiceAccount admission plugin rejects pods until it exists.
	if err := poll(waitCtx, "ServiceAccount default/default", func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "fluxd-controlplane: ready in %.2fs (etcd %.2fs, apiserver /readyz %.2fs; "+
		"apiserver https://127.0.0.1:%s)\n",
		time.Since(began).Seconds(), etcdReady.Seconds(), apiReady.Seconds(), apiPort)
	fmt.Printf("ready %s\n", kubeconfig)
	cancel() // start-up is over; the watcher goroutine above must not report later exits as start-up failures

	select {
	case <-ctx.Done():
		return nil
	case name := <-exited:
		return fmt.Errorf("%s exited; see %s", name, filepath.Join(dir, "logs", name+".log"))
	}
}

// stopOnStdinEOF returns a context cancelled once stdin is closed. The launcher
// holds the write end of that pipe and never writes, so EOF means it is gone
// and nobody will ever stop this cluster otherwise.
func stopOnStdinEOF(parent context.Context) context.Context {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	return ctx
}

// poll calls check every 100ms until it returns true, an error, or ctx ends.
func poll(ctx context.Context, what string, check func(context.Context) (bool, error)) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := check(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// freePorts asks the kernel for n free loopback ports. They are released
// before use, so another process could grab one in between; on loopback in a
// test run that race is rare enough, and a failure shows up as a clear
// bind error in the component's log.
func freePorts(n int) ([]string, error) {
	var ports []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	return ports, nil
}

func startEtcd(dir, clientURL, peerURL string) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cu, err := url.Parse(clientURL)
	if err != nil {
		return nil, err
	}
	pu, err := url.Parse(peerURL)
	if err != nil {
		return nil, err
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// The data is thrown away after the run, so durability buys nothing and
	// fsync is the slowest thing etcd does.
	cfg.UnsafeNoFsync = true
	cfg.LogLevel = "error"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, err
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, errors.New("etcd did not become ready within 30s")
	}
}

// writeKubeconfig embeds the certificates so the file stays valid when copied.
func writeKubeconfig(path, server string, pki pkiFiles) error {
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			panic(err) // written by writePKI a moment ago
		}
		return b
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["fluxd"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: read(pki.caCert)}
	cfg.AuthInfos["fluxd-admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: read(pki.adminCert),
		ClientKeyData:         read(pki.adminKey),
	}
	cfg.Contexts["fluxd"] = &clientcmdapi.Context{Cluster: "fluxd", AuthInfo: "fluxd-admin"}
	cfg.CurrentContext = "fluxd"
	return clientcmd.WriteToFile(*cfg, path)
}

// child is one component running as a re-executed copy of this binary.
type child struct {
	name string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

func (c *child) start(dir string, exited chan<- string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logDir := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(logDir, c.name+".log"))
	if err != nil {
		return err
	}
	c.cmd = exec.Command(self, append([]string{c.name}, c.args...)...)
	c.cmd.Stdout, c.cmd.Stderr = log, log
	// If "up" is SIGKILLed it cannot stop its children; the kernel does.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting %s: %w", c.name, err)
	}
	c.done = make(chan struct{})
	go func() {
		_ = c.cmd.Wait()
		log.Close()
		close(c.done)
		exited <- c.name
	}()
	return nil
}

// stopChildren sends SIGTERM to every child, then SIGKILL to any still
// running after five seconds.
func stopChildren(procs []*child) {
	for _, c := range procs {
		if c.cmd != nil && c.cmd.Process != nil {
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.After(5 * time.Second)
	for _, c := range procs {
		if c.done == nil {
			continue
		}
		select {
		case <-c.done:
		case <-deadline:
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
}
