//! Live capture from an interface (libpcap through the `pcap` crate).
//!
//! A capture thread reads packets and hands them, in batches, through a bounded channel to the analysis thread.
//! When analysis falls behind, the channel fills, the capture thread blocks, and the kernel's buffer absorbs the
//! burst — or drops, which libpcap counts and we report; nothing is dropped silently in between. With `-w` the
//! capture thread also writes every packet, in the order it hands them on, so the file analysed offline later
//! gives the same frame numbers and timestamps, hence the same verdicts.

use super::{LinkType, SourceError};
use crate::ts::Ts;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How to open the interface.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    pub interface: String,
    pub filter: Option<String>,
    pub snaplen: i32,
    pub buffer_mb: i32,
    /// libpcap's immediate mode (each packet handed over at once). Off, the kernel fills its ring's blocks and
    /// hands them over full or after the 100 ms read timeout: twice the packet rate without drops (benches/live.sh),
    /// and 100 ms is nothing next to the 2 s a closed connection lingers before its verdict.
    pub immediate: bool,
    pub write: Option<PathBuf>,
    /// Stop after this many packets.
    pub count: Option<u64>,
}

/// Packets captured together, with their bytes in one buffer.
#[derive(Debug, Default)]
pub struct Batch {
    pub data: Vec<u8>,
    /// Timestamp, start and captured length in `data`, wire length.
    pub packets: Vec<(Ts, usize, usize, u32)>,
}

/// Counters shared by the capture thread.
#[derive(Debug, Default)]
pub struct LiveStats {
    pub captured: AtomicU64,
    /// Kernel / interface drops as libpcap reports them.
    pub kernel_dropped: AtomicU64,
    pub if_dropped: AtomicU64,
    /// The capture stopped because of an error (the message), not because it was asked to.
    pub error: Mutex<Option<String>>,
}

/// An open interface, not yet reading.
pub struct Live {
    cap: pcap::Capture<pcap::Active>,
    save: Option<pcap::Savefile>,
    pub link: LinkType,
    opts: LiveOptions,
}

/// The running capture.
pub struct Running {
    pub packets: Receiver<Batch>,
    pub stats: Arc<LiveStats>,
    thread: Option<JoinHandle<()>>,
    stopper: Stopper,
}

/// Stops a running capture from any thread (the Ctrl-C handler, a timer). Setting the flag alone is not enough:
/// libpcap's read timeout only starts once a packet arrives, so a quiet link would block the read forever;
/// `pcap_breakloop` wakes it.
#[derive(Clone)]
pub struct Stopper {
    flag: Arc<AtomicBool>,
    breaker: Arc<pcap::BreakLoop>,
}

impl Stopper {
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.breaker.breakloop();
    }
    pub fn stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// One interface for `-D`.
pub struct InterfaceInfo {
    pub name: String,
    pub description: Option<String>,
    pub addresses: Vec<String>,
    pub up: bool,
}

pub fn list_interfaces() -> Result<Vec<InterfaceInfo>, SourceError> {
    let devs = pcap::Device::list().map_err(|e| SourceError {
        file: "interfaces".into(),
        message: e.to_string(),
    })?;
    Ok(devs
        .into_iter()
        .map(|d| InterfaceInfo {
            up: d.flags.is_up(),
            addresses: d.addresses.iter().map(|a| a.addr.to_string()).collect(),
            description: d.desc,
            name: d.name,
        })
        .collect())
}

/// Turns libpcap's messages into one line that says what to do.
fn explain(iface: &str, e: pcap::Error) -> SourceError {
    let msg = e.to_string();
    let lower = msg.to_ascii_lowercase();
    let message = if lower.contains("permission") || lower.contains("operation not permitted") {
        format!(
            "no permission to capture ({msg}); run as root, or give the binary the capabilities: sudo setcap cap_net_raw,cap_net_admin=eip $(command -v whoclosed)"
        )
    } else if lower.contains("no such device") || lower.contains("doesn't exist") || lower.contains("not found") {
        format!("no such interface ({msg}); `whoclosed -D` lists the interfaces")
    } else {
        msg
    };
    SourceError {
        file: iface.to_string(),
        message,
    }
}

impl Live {
    /// Opens the interface, applies the filter, opens the `-w` file. Privileged steps all happen here, so the
    /// caller can drop privileges right after.
    pub fn open(opts: LiveOptions) -> Result<Live, SourceError> {
        let iface = opts.interface.clone();
        let inactive = pcap::Capture::from_device(iface.as_str()).map_err(|e| explain(&iface, e))?;
        let mut cap = inactive
            .snaplen(opts.snaplen)
            .buffer_size(opts.buffer_mb.saturating_mul(1024 * 1024))
            .immediate_mode(opts.immediate)
            .promisc(true)
            .precision(pcap::Precision::Nano)
            .timeout(100)
            .open()
            .map_err(|e| explain(&iface, e))?;
        if let Some(f) = opts.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            cap.filter(f, true).map_err(|e| SourceError {
                file: iface.clone(),
                message: format!("bad capture filter \"{f}\": {e}"),
            })?;
        }
        let link = LinkType(u32::try_from(cap.get_datalink().0).unwrap_or(u32::MAX));
        let save = match &opts.write {
            Some(p) => Some(cap.savefile(p).map_err(|e| SourceError {
                file: p.display().to_string(),
                message: format!("cannot write the capture file: {e}"),
            })?),
            None => None,
        };
        Ok(Live { cap, save, link, opts })
    }

    /// Starts the capture thread; [`Running::stopper`] ends it.
    pub fn start(mut self) -> Running {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(64);
        let stats = Arc::new(LiveStats::default());
        let st = Arc::clone(&stats);
        let stopper = Stopper {
            flag: Arc::new(AtomicBool::new(false)),
            breaker: Arc::new(self.cap.breakloop_handle()),
        };
        let stop = Arc::clone(&stopper.flag);
        let thread = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || capture_loop(self, tx, &st, &stop))
            .ok();
        Running {
            packets: rx,
            stats,
            thread,
            stopper,
        }
    }
}

fn capture_loop(mut live: Live, tx: SyncSender<Batch>, stats: &LiveStats, stop: &AtomicBool) {
    const BATCH_PACKETS: usize = 256;
    const BATCH_WAIT: Duration = Duration::from_millis(50);
    let mut batch = Batch::default();
    let mut batch_started = Instant::now();
    let mut last_stats = Instant::now();
    let mut captured: u64 = 0;
    let send = |b: Batch| -> bool {
        // Blocks when analysis is behind (the kernel buffer takes the burst); gives up only if the reader is gone.
        let mut b = b;
        loop {
            match tx.try_send(b) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    if stop.load(Ordering::Relaxed) {
                        return tx.send(back).is_ok();
                    }
                    b = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    };
    loop {
        if stop.load(Ordering::Relaxed) || live.opts.count.is_some_and(|c| captured >= c) {
            break;
        }
        match live.cap.next_packet() {
            Ok(p) => {
                captured += 1;
                if let Some(s) = live.save.as_mut() {
                    s.write(&p);
                }
                let tv = p.header.ts;
                let ts = Ts::from_secs_nanos(
                    u64::try_from(tv.tv_sec).unwrap_or(0),
                    u64::try_from(tv.tv_usec).unwrap_or(0),
                );
                let start = batch.data.len();
                batch.data.extend_from_slice(p.data);
                batch.packets.push((ts, start, p.data.len(), p.header.len));
                stats.captured.store(captured, Ordering::Relaxed);
            }
            Err(pcap::Error::TimeoutExpired) => {}
            // pcap_breakloop: asked to stop.
            Err(pcap::Error::NoMorePackets) if stop.load(Ordering::Relaxed) => break,
            Err(e) => {
                if let Ok(mut g) = stats.error.lock() {
                    *g = Some(e.to_string());
                }
                break;
            }
        }
        if !batch.packets.is_empty() && (batch.packets.len() >= BATCH_PACKETS || batch_started.elapsed() >= BATCH_WAIT)
        {
            if let Some(s) = live.save.as_mut() {
                let _ = s.flush();
            }
            if !send(std::mem::take(&mut batch)) {
                return;
            }
            batch_started = Instant::now();
        }
        if batch.packets.is_empty() {
            batch_started = Instant::now();
        }
        if last_stats.elapsed() >= Duration::from_millis(500) {
            update_stats(&mut live.cap, stats);
            last_stats = Instant::now();
        }
    }
    update_stats(&mut live.cap, stats);
    if let Some(s) = live.save.as_mut() {
        let _ = s.flush();
    }
    if !batch.packets.is_empty() {
        let _ = send(batch);
    }
}

fn update_stats(cap: &mut pcap::Capture<pcap::Active>, stats: &LiveStats) {
    if let Ok(s) = cap.stats() {
        stats.kernel_dropped.store(u64::from(s.dropped), Ordering::Relaxed);
        stats.if_dropped.store(u64::from(s.if_dropped), Ordering::Relaxed);
    }
}

impl Running {
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Waits for the capture thread to finish (after `stop` was set, or the count reached).
    pub fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
