package main

// The node simulator stands in for a kubelet: it registers one Node, keeps it
// alive with Lease heartbeats (so the controller-manager's node lifecycle
// controller never taints it or evicts its pods), and plays the kubelet's part
// of the pod lifecycle: pods bound to the node become Running and Ready at
// once, and pods being deleted are removed for good. No container runs; the
// point is that Deployments, ReplicaSets, StatefulSets and DaemonSets roll
// out exactly as the real controllers drive them.
//
// Pods that are meant to finish (restartPolicy Never or OnFailure, which is
// what Jobs create) run for jobRunTime and then exit: phase Succeeded, every
// container terminated with exit code 0, so the Job controller marks the Job
// Complete. Test hook: a pod annotated
//
//	fluxd.test/fail: "true"
//
// exits with code 1 instead and ends Failed (whatever its restart policy), so
// a Job with backoffLimit 0 fails. Pods that restart Always never exit.

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/component-base/version"
	"k8s.io/utils/ptr"
)

const (
	leaseDuration = 40 * time.Second // the kubelet's default

	// jobRunTime is how long a pod that is meant to finish "runs" before exiting.
	jobRunTime = time.Second
	// failAnnotation set to "true" makes such a pod exit with an error.
	failAnnotation = "fluxd.test/fail"
)

type simulator struct {
	client kubernetes.Interface
	node   string

	mu     sync.Mutex
	podIPs map[types.UID]string // stable IP per pod; freed on delete
	nextIP int
}

// registerNode creates the Node, Ready and with room for many pods.
func (s *simulator) registerNode(ctx context.Context) error {
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, st corev1.ConditionStatus, reason string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: st, Reason: reason,
			LastHeartbeatTime: now, LastTransitionTime: now}
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("32"),
		corev1.ResourceMemory:           resource.MustParse("128Gi"),
		corev1.ResourcePods:             resource.MustParse("500"),
		corev1.ResourceEphemeralStorage: resource.MustParse("1Ti"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: s.node, Labels: map[string]string{
			"kubernetes.io/hostname": s.node,
			"kubernetes.io/os":       "linux",
			"kubernetes.io/arch":     "amd64",
		}},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
			Conditions: []corev1.NodeCondition{
				cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady"),
				cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory"),
				cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure"),
				cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID"),
			},
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
				{Type: corev1.NodeHostName, Address: s.node},
			},
			NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion:          version.Get().GitVersion, // stamped by the build
				ContainerRuntimeVersion: "fluxd-simulator://1",
				OperatingSystem:         "linux",
				Architecture:            "amd64",
			},
		},
	}
	created, err := s.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) { // a kept --data-dir: the node is from a previous run
		created, err = s.client.CoreV1().Nodes().Get(ctx, s.node, metav1.GetOptions{})
	}
	if err != nil {
		return err
	}
	// Status is not guaranteed to survive Create; set it the way a kubelet does.
	created.Status = node.Status
	if _, err := s.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return err
	}
	// Heartbeat once before returning, so the node counts as alive from the start.
	return poll(ctx, "node lease", func(ctx context.Context) (bool, error) {
		return s.renewLease(ctx, created.UID) == nil, nil // kube-node-lease may not exist yet
	})
}

// renewLease creates or renews the node's Lease in kube-node-lease.
func (s *simulator) renewLease(ctx context.Context, nodeUID types.UID) error {
	leases := s.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, s.node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: s.node, OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "v1", Kind: "Node", Name: s.node, UID: nodeUID},
			}},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(s.node),
				LeaseDurationSeconds: ptr.To(int32(leaseDuration.Seconds())),
				RenewTime:            &now,
			},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

// run heartbeats and handles the node's pods until ctx ends.
func (s *simulator) run(ctx context.Context) {
	s.podIPs = map[types.UID]string{}
	node, err := s.client.CoreV1().Nodes().Get(ctx, s.node, metav1.GetOptions{})
	if err == nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(leaseDuration / 4):
				}
				if err := s.renewLease(ctx, node.UID); err != nil && ctx.Err() == nil {
					fmt.Fprintf(os.Stderr, "simulator: renewing lease: %v\n", err)
				}
			}
		}()
	}

	// Watch only this node's pods, like a kubelet does.
	factory := informers.NewSharedInformerFactoryWithOptions(s.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", s.node).String()
		}))
	pods := factory.Core().V1().Pods()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	_, _ = pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	go func() { <-ctx.Done(); queue.ShutDown() }()

	lister := pods.Lister()
	for {
		key, quit := queue.Get()
		if quit {
			return
		}
		ns, name, _ := cache.SplitMetaNamespaceKey(key)
		var after time.Duration
		pod, err := lister.Pods(ns).Get(name)
		if apierrors.IsNotFound(err) {
			err = nil // already gone; its IP was freed on deletion
		} else if err == nil {
			after, err = s.sync(ctx, pod)
		}
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			fmt.Fprintf(os.Stderr, "simulator: pod %s: %v\n", key, err)
		}
		switch {
		case err != nil:
			queue.AddRateLimited(key) // a conflict means a newer version is on its way; retry anyway
		case after > 0:
			queue.Forget(key)
			queue.AddAfter(key, after) // a running job pod: look again when it is due to exit
		default:
			queue.Forget(key)
		}
		queue.Done(key)
	}
}

// sync moves one pod towards what a kubelet would report. A positive duration
// asks to be called again for this pod after that long.
func (s *simulator) sync(ctx context.Context, pod *corev1.Pod) (time.Duration, error) {
	if pod.DeletionTimestamp != nil {
		// The "containers" stop instantly, so finish the graceful deletion the
		// way a kubelet does: delete with grace period 0, bound to this UID.
		s.mu.Lock()
		delete(s.podIPs, pod.UID)
		s.mu.Unlock()
		return 0, s.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To(int64(0)),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
	}
	var status corev1.PodStatus
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		return 0, nil // finished pods never change
	case corev1.PodRunning:
		if pod.Status.PodIP == "" {
			status = s.runningStatus(pod)
			break
		}
		if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways {
			return 0, nil // already reported; a serving pod runs until deleted
		}
		started := pod.Status.StartTime
		if started == nil {
			started = &metav1.Time{}
		}
		if left := time.Until(started.Add(jobRunTime)); left > 0 {
			return left, nil
		}
		status = exitedStatus(pod, pod.Annotations[failAnnotation] == "true")
	default:
		status = s.runningStatus(pod)
	}
	updated := pod.DeepCopy()
	updated.Status = status
	_, err := s.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	return 0, err
}

// exitedStatus is a running pod's status once all its containers have exited,
// with code 1 if failed and 0 otherwise.
func exitedStatus(pod *corev1.Pod, failed bool) corev1.PodStatus {
	now := metav1.Now()
	status := *pod.Status.DeepCopy()
	phase, exitCode, reason := corev1.PodSucceeded, int32(0), "Completed"
	if failed {
		phase, exitCode, reason = corev1.PodFailed, 1, "Error"
	}
	status.Phase = phase
	for i, c := range status.Conditions {
		if c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
			status.Conditions[i].Status = corev1.ConditionFalse
			status.Conditions[i].Reason = "PodCompleted"
			status.Conditions[i].LastTransitionTime = now
		}
	}
	for i := range status.ContainerStatuses {
		cs := &status.ContainerStatuses[i]
		var startedAt metav1.Time
		if cs.State.Running != nil {
			startedAt = cs.State.Running.StartedAt
		}
		cs.Ready, cs.Started = false, ptr.To(false)
		cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: exitCode, Reason: reason, StartedAt: startedAt, FinishedAt: now,
			ContainerID: cs.ContainerID,
		}}
	}
	return status
}

func (s *simulator) runningStatus(pod *corev1.Pod) corev1.PodStatus {
	now := metav1.Now()
	ip := "127.0.0.1"
	if !pod.Spec.HostNetwork {
		ip = s.podIP(pod.UID)
	}
	status := corev1.PodStatus{
		Phase:     corev1.PodRunning,
		HostIP:    "127.0.0.1",
		HostIPs:   []corev1.HostIP{{IP: "127.0.0.1"}},
		PodIP:     ip,
		PodIPs:    []corev1.PodIP{{IP: ip}},
		StartTime: &now,
		QOSClass:  pod.Status.QOSClass, // set by the apiserver; keep it
	}
	for _, t := range []corev1.PodConditionType{
		corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady,
		corev1.PodReady, corev1.PodScheduled,
	} {
		status.Conditions = append(status.Conditions, corev1.PodCondition{
			Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now,
		})
	}
	id := func(c corev1.Container) string { return fmt.Sprintf("simulator://%s/%s", pod.UID, c.Name) }
	for _, c := range pod.Spec.InitContainers {
		status.InitContainerStatuses = append(status.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: id(c), Ready: true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now, ContainerID: id(c),
			}},
		})
	}
	for _, c := range pod.Spec.Containers {
		status.ContainerStatuses = append(status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: id(c),
			Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return status
}

// podIP hands out addresses from 10.244.0.0/16, stable for a pod's lifetime.
func (s *simulator) podIP(uid types.UID) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ip, ok := s.podIPs[uid]; ok {
		return ip
	}
	s.nextIP++
	n := s.nextIP%65000 + 2 // skip .0.0 and .0.1
	ip := fmt.Sprintf("10.244.%d.%d", n/256, n%256)
	s.podIPs[uid] = ip
	return ip
}
