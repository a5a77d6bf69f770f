//! A timer precise to microseconds, for the log client's linger (see
//! `durable::LINGER_GAP`).
//!
//! tokio's timers tick in whole milliseconds: a `sleep` of 200 us ends
//! after one to two milliseconds. The linger that gathers an append's
//! records waits for gaps of a few hundred microseconds, and a wait rounded
//! up to the next tick costs a 3-node commit's whole duration again. On
//! Linux this is a `timerfd` registered with the runtime's reactor; a
//! rearm is one `timerfd_settime`. Elsewhere it falls back to tokio's
//! timer.

use std::io;
use std::time::Instant;

#[cfg(target_os = "linux")]
pub use linux::ShortTimer;

#[cfg(not(target_os = "linux"))]
pub use fallback::ShortTimer;

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    use super::*;

    /// One timer, armed for at most one deadline at a time.
    pub struct ShortTimer {
        fd: AsyncFd<OwnedFd>,
        armed: bool,
    }

    impl ShortTimer {
        /// A disarmed timer. Must be called inside a tokio runtime.
        pub fn new() -> io::Result<Self> {
            // SAFETY: plain syscall; the fd returned is owned below.
            let raw = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `raw` is a new descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: an OwnedFd keeps its descriptor open and unchanged
            // for as long as the AsyncFd owns it.
            let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                .map_err(io::Error::from)?;
            Ok(Self { fd, armed: false })
        }

        /// Whether a deadline is set and has not been waited out yet.
        pub fn is_armed(&self) -> bool {
            self.armed
        }

        /// Sets the deadline (replacing any earlier one); one already past
        /// expires at once.
        pub fn arm_at(&mut self, deadline: Instant) -> io::Result<()> {
            // A zero it_value would disarm the timer: 1 ns expires at once.
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .max(std::time::Duration::from_nanos(1));
            self.set(libc::timespec {
                tv_sec: wait.as_secs() as libc::time_t,
                tv_nsec: wait.subsec_nanos() as libc::c_long,
            })?;
            self.armed = true;
            Ok(())
        }

        /// Cancels the deadline.
        pub fn disarm(&mut self) -> io::Result<()> {
            self.set(libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            })?;
            self.drain();
            self.armed = false;
            Ok(())
        }

        /// Waits for the deadline (forever while disarmed). Cancel-safe.
        pub async fn expired(&mut self) -> io::Result<()> {
            loop {
                let mut guard = self.fd.readable().await?;
                if self.drain() {
                    self.armed = false;
                    return Ok(());
                }
                guard.clear_ready();
            }
        }

        /// Reads the expiry count; whether the timer had expired.
        fn drain(&self) -> bool {
            let mut count = 0u64;
            // SAFETY: reads 8 bytes into a u64 from a descriptor we own.
            let n = unsafe {
                libc::read(
                    self.fd.get_ref().as_raw_fd(),
                    (&mut count as *mut u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
            n == std::mem::size_of::<u64>() as isize
        }

        fn set(&self, value: libc::timespec) -> io::Result<()> {
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: value,
            };
            // SAFETY: `spec` is a valid itimerspec; the old value is not read.
            let r = unsafe {
                libc::timerfd_settime(
                    self.fd.get_ref().as_raw_fd(),
                    0,
                    &spec,
                    std::ptr::null_mut(),
                )
            };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod fallback {
    use super::*;

    /// tokio's timer (millisecond ticks) behind the same interface.
    pub struct ShortTimer {
        deadline: Option<tokio::time::Instant>,
    }

    impl ShortTimer {
        pub fn new() -> io::Result<Self> {
            Ok(Self { deadline: None })
        }

        pub fn is_armed(&self) -> bool {
            self.deadline.is_some()
        }

        pub fn arm_at(&mut self, deadline: Instant) -> io::Result<()> {
            self.deadline = Some(tokio::time::Instant::from_std(deadline));
            Ok(())
        }

        pub fn disarm(&mut self) -> io::Result<()> {
            self.deadline = None;
            Ok(())
        }

        pub async fn expired(&mut self) -> io::Result<()> {
            match self.deadline {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
            self.deadline = None;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn expires_after_its_deadline_and_not_before() {
        let mut t = ShortTimer::new().unwrap();
        let start = Instant::now();
        t.arm_at(start + Duration::from_micros(300)).unwrap();
        assert!(t.is_armed());
        t.expired().await.unwrap();
        assert!(start.elapsed() >= Duration::from_micros(300));
        assert!(!t.is_armed());
    }

    #[tokio::test]
    async fn a_disarmed_timer_never_expires_and_can_be_rearmed() {
        let mut t = ShortTimer::new().unwrap();
        t.arm_at(Instant::now() + Duration::from_micros(100))
            .unwrap();
        t.disarm().unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(20), t.expired()).await;
        assert!(waited.is_err(), "a disarmed timer expired");
        t.arm_at(Instant::now()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), t.expired())
            .await
            .expect("a past deadline expires at once")
            .unwrap();
    }

    #[tokio::test]
    async fn rearming_moves_the_deadline() {
        let mut t = ShortTimer::new().unwrap();
        let start = Instant::now();
        t.arm_at(start + Duration::from_secs(60)).unwrap();
        t.arm_at(start + Duration::from_micros(200)).unwrap();
        tokio::time::timeout(Duration::from_secs(5), t.expired())
            .await
            .expect("the later deadline replaced the earlier one")
            .unwrap();
    }
}
