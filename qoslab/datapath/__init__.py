"""The userspace datapath: qoslab's qdisc models on live packets.

For the qdiscs, classifiers and tunnels a kernel lacks (``sch_sfq``, ``sch_fq_codel``,
``cls_flow``, ``ipip``/``sit`` …), the ``userspace`` backend
(:mod:`qoslab.scenarios.backend_userspace`) routes the client's packets through a qoslab
process on the lab's router instead of a kernel qdisc:

* :mod:`.tun` — the TUN device the kernel hands the packets to (and takes them back from);
* :mod:`.lab` — the policy routing that sends the client's packets into it;
* :mod:`.engine` — the loop: packets through the same runtime qdisc tree the simulator and
  replay drive (:mod:`qoslab.qdiscs`), the link's rate and delay emulated, seeds and config
  changes at their scenario times, the decision log; and the far end of the userspace tunnel;
* :mod:`.packets` — which flow a packet belongs to (qoslab's capture decoder once per flow, a
  byte key after that);
* :mod:`.tunnel` — IP-in-IP encapsulation and decapsulation;
* :mod:`.clock` — waking on time (``epoll`` and a ``timerfd``);
* :mod:`.pcapfile` — the capture of the datapath's input;
* :mod:`.plan` — what a datapath process runs (JSON, specs as ``tc`` text);
* :mod:`.process` — the parent's side: start, talk to, stop (:mod:`.cli` is the child's).
"""
