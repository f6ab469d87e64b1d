//! Communication between processes through MLX's own backends, as in `mlx.core.distributed`:
//! ring (TCP, any machine), MPI (where installed), NCCL (NVIDIA GPUs).
//!
//! A process joins with [`init`]; how it finds the others is the backend's business (ring:
//! `MLX_HOSTFILE` and `MLX_RANK`; NCCL: `MLX_RANK`, `MLX_WORLD_SIZE` and the coordinator's
//! address in `NCCL_HOST_IP`/`NCCL_PORT`, as set by `mlx.launch`). The collectives are lazy ops
//! like any other: they run when their result is evaluated. Collective ops on a group of size
//! one return their input.

use std::ffi::CString;
use std::rc::Rc;

use mlx_macros::default_device;
use mlx_sys as sys;

use crate::error::{Error, Result};
use crate::{Array, Dtype, Stream, ffi};

/// A distributed backend of MLX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The first available one (MLX's choice).
    Any,
    /// TCP ring between hosts (`MLX_HOSTFILE`).
    Ring,
    /// MPI.
    Mpi,
    /// NCCL on NVIDIA GPUs.
    Nccl,
    /// JACCL (RDMA over Thunderbolt, macOS).
    Jaccl,
}

impl Backend {
    fn c_name(self) -> Option<CString> {
        let name = match self {
            Backend::Any => return None,
            Backend::Ring => "ring",
            Backend::Mpi => "mpi",
            Backend::Nccl => "nccl",
            Backend::Jaccl => "jaccl",
        };
        CString::new(name).ok()
    }

    /// True when this build of MLX has the backend.
    pub fn is_available(self) -> bool {
        ffi::init();
        let name = self.c_name();
        let ptr = name.as_ref().map_or(std::ptr::null(), |n| n.as_ptr());
        // SAFETY: `ptr` is NULL or a NUL-terminated string that outlives the call.
        unsafe { sys::mlx_distributed_is_available(ptr) }
    }
}

/// A group of processes that communicate.
///
/// Cloning is cheap and shares the one native handle (layers that communicate, such as
/// [`crate::nn::ShardedLinear`], keep a clone). Not `Send`: use a group on the thread that made
/// it.
#[derive(Clone)]
pub struct Group {
    owner: Rc<GroupHandle>,
}

/// The owned native handle, freed when the last [`Group`] clone goes.
struct GroupHandle {
    raw: sys::mlx_distributed_group,
}

impl Group {
    fn raw(&self) -> sys::mlx_distributed_group {
        self.owner.raw
    }

    /// This process's rank in the group, from 0.
    pub fn rank(&self) -> i32 {
        // SAFETY: the handle is live.
        unsafe { sys::mlx_distributed_group_rank(self.raw()) }
    }

    /// The number of processes in the group.
    pub fn size(&self) -> i32 {
        // SAFETY: the handle is live.
        unsafe { sys::mlx_distributed_group_size(self.raw()) }
    }

    /// Splits the group: processes with the same `color` form a subgroup, ordered by `key`
    /// (`-1`: by rank). MLX 0.32.2's ring backend cannot split (an `Err`); MPI and NCCL can.
    pub fn split(&self, color: i32, key: i32) -> Result<Group> {
        let mut out = GroupHandle::empty();
        // SAFETY: live handles; the result is owned by `out`.
        ffi::status("distributed_split", || unsafe {
            sys::mlx_distributed_group_split(&mut out.raw, self.raw(), color, key)
        })?;
        Ok(Group { owner: Rc::new(out) })
    }
}

impl GroupHandle {
    fn empty() -> GroupHandle {
        // SAFETY: no preconditions; freed in `Drop`.
        GroupHandle { raw: ffi::call(|| unsafe { sys::mlx_distributed_group_new() }) }
    }
}

impl Drop for GroupHandle {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        ffi::free(|| unsafe { sys::mlx_distributed_group_free(self.raw) });
    }
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").field("rank", &self.rank()).field("size", &self.size()).finish()
    }
}

/// Joins (or returns) the global group of `backend`.
///
/// With `strict`, failing to set the backend up is an error; without it, a process with no
/// configuration gets a group of size one.
pub fn init(strict: bool, backend: Backend) -> Result<Group> {
    let name = backend.c_name();
    let ptr = name.as_ref().map_or(std::ptr::null(), |n| n.as_ptr());
    let mut group = GroupHandle::empty();
    // SAFETY: `ptr` is NULL or a live NUL-terminated string; the result is owned by `group`.
    ffi::status("distributed_init", || unsafe {
        sys::mlx_distributed_init(&mut group.raw, strict, ptr)
    })?;
    if group.raw.ctx.is_null() {
        return Err(Error::new(
            crate::ErrorKind::Unsupported,
            "distributed_init",
            format!("no {backend:?} distributed backend could be initialised"),
        ));
    }
    Ok(Group { owner: Rc::new(group) })
}

fn group_raw(group: Option<&Group>) -> sys::mlx_distributed_group {
    group.map_or_else(ffi::empty, |g| g.raw())
}

macro_rules! collective {
    ($(#[$doc:meta])* $name:ident, $c:ident) => {
        $(#[$doc])*
        #[default_device]
        pub fn $name(x: &Array, group: Option<&Group>, stream: &Stream) -> Result<Array> {
            ffi::array_out(stringify!($name), |out| {
                // SAFETY: live handles, or an empty group handle for the global group.
                unsafe { sys::$c(out, x.raw(), group_raw(group), stream.raw()) }
            })
        }
    };
}

collective!(
    /// Element-wise sum of `x` over every process of the group (global group when `None`).
    all_sum_device,
    mlx_distributed_all_sum
);
collective!(
    /// Element-wise maximum of `x` over the group.
    all_max_device,
    mlx_distributed_all_max
);
collective!(
    /// Element-wise minimum of `x` over the group.
    all_min_device,
    mlx_distributed_all_min
);
collective!(
    /// The `x` of every process, concatenated along the first axis in rank order.
    all_gather_device,
    mlx_distributed_all_gather
);
collective!(
    /// Sums `x` over the group and gives each process its slice of the first axis.
    sum_scatter_device,
    mlx_distributed_sum_scatter
);

/// Sends `x` to process `dst`; evaluate the result to perform the send.
#[default_device]
pub fn send_device(x: &Array, dst: i32, group: Option<&Group>, stream: &Stream) -> Result<Array> {
    ffi::array_out("send", |out| {
        // SAFETY: live handles, or an empty group handle for the global group.
        unsafe { sys::mlx_distributed_send(out, x.raw(), dst, group_raw(group), stream.raw()) }
    })
}

/// Receives an array of `shape` and `dtype` from process `src`.
#[default_device]
pub fn recv_device(
    shape: &[i32],
    dtype: Dtype,
    src: i32,
    group: Option<&Group>,
    stream: &Stream,
) -> Result<Array> {
    crate::array::element_count("recv", shape)?;
    ffi::array_out("recv", |out| {
        // SAFETY: `shape` holds `len` sizes; live handles or an empty group handle.
        unsafe {
            sys::mlx_distributed_recv(
                out,
                shape.as_ptr(),
                shape.len(),
                dtype.to_raw(),
                src,
                group_raw(group),
                stream.raw(),
            )
        }
    })
}

/// Receives an array shaped like `like` from process `src`.
#[default_device]
pub fn recv_like_device(
    like: &Array,
    src: i32,
    group: Option<&Group>,
    stream: &Stream,
) -> Result<Array> {
    ffi::array_out("recv_like", |out| {
        // SAFETY: live handles, or an empty group handle for the global group.
        unsafe {
            sys::mlx_distributed_recv_like(out, like.raw(), src, group_raw(group), stream.raw())
        }
    })
}
