// kemu user space: the types and constants of libhsakmt's public header (hsakmttypes.h, ROCm
// ROCT-Thunk-Interface / ROCR-Runtime libhsakmt) that the thunk in this directory implements:
// status codes, SVM attributes, node properties, queue and event descriptions. Values are the
// library's; structures are TypeScript objects with the C field names.

export enum HSAKMT_STATUS {
  SUCCESS = 0,
  ERROR = 1,
  DRIVER_MISMATCH = 2,
  INVALID_PARAMETER = 3,
  INVALID_HANDLE = 4,
  INVALID_NODE_UNIT = 5,
  NO_MEMORY = 6,
  BUFFER_TOO_SMALL = 7,
  NOT_IMPLEMENTED = 10,
  NOT_SUPPORTED = 11,
  UNAVAILABLE = 12,
  OUT_OF_RESOURCES = 13,
  KERNEL_IO_CHANNEL_NOT_OPENED = 20,
  KERNEL_COMMUNICATION_ERROR = 21,
  KERNEL_ALREADY_OPENED = 22,
  HSAMMU_UNAVAILABLE = 23,
  WAIT_FAILURE = 30,
  WAIT_TIMEOUT = 31,
  MEMORY_ALREADY_REGISTERED = 35,
  MEMORY_NOT_REGISTERED = 36,
  MEMORY_ALIGNMENT = 37,
}

/** INVALID_NODEID: "no node" / undefined location. */
export const INVALID_NODEID = 0xffffffff;

// HSA_SVM_ATTR_* (the KFD_IOCTL_SVM_ATTR_* values)
export const HSA_SVM_ATTR_PREFERRED_LOC = 0;
export const HSA_SVM_ATTR_PREFETCH_LOC = 1;
export const HSA_SVM_ATTR_ACCESS = 2;
export const HSA_SVM_ATTR_ACCESS_IN_PLACE = 3;
export const HSA_SVM_ATTR_NO_ACCESS = 4;
export const HSA_SVM_ATTR_SET_FLAGS = 5;
export const HSA_SVM_ATTR_CLR_FLAGS = 6;
export const HSA_SVM_ATTR_GRANULARITY = 7;

// HSA_SVM_FLAG_*
export const HSA_SVM_FLAG_HOST_ACCESS = 0x01;
export const HSA_SVM_FLAG_COHERENT = 0x02;
export const HSA_SVM_FLAG_HIVE_LOCAL = 0x04;
export const HSA_SVM_FLAG_GPU_RO = 0x08;
export const HSA_SVM_FLAG_GPU_EXEC = 0x10;
export const HSA_SVM_FLAG_GPU_READ_MOSTLY = 0x20;
export const HSA_SVM_FLAG_GPU_ALWAYS_MAPPED = 0x40;
export const HSA_SVM_FLAG_EXT_COHERENT = 0x80;

/** HSA_SVM_ATTRIBUTE: { type, value } (value is a node id for locations and access). */
export interface HSA_SVM_ATTRIBUTE {
  type: number;
  value: number;
}

// HSA_EVENTTYPE
export const HSA_EVENTTYPE_SIGNAL = 0;
export const HSA_EVENTTYPE_NODECHANGE = 1;
export const HSA_EVENTTYPE_DEVICESTATECHANGE = 2;
export const HSA_EVENTTYPE_HW_EXCEPTION = 3;
export const HSA_EVENTTYPE_SYSTEM_EVENT = 4;
export const HSA_EVENTTYPE_DEBUG_EVENT = 5;
export const HSA_EVENTTYPE_PROFILE_EVENT = 6;
export const HSA_EVENTTYPE_QUEUE_EVENT = 7;
export const HSA_EVENTTYPE_MEMORY = 8;

/** HSA_EVENTTIMEOUT_INFINITE */
export const HSA_EVENTTIMEOUT_INFINITE = 0xffffffff;

// HSA_QUEUE_TYPE
export const HSA_QUEUE_COMPUTE = 1;
export const HSA_QUEUE_SDMA = 2;
export const HSA_QUEUE_COMPUTE_AQL = 21;

// HSA_QUEUE_PRIORITY (NORMAL = 0; the thunk maps -3..3 to KFD's 0..15)
export const HSA_QUEUE_PRIORITY_NORMAL = 0;
export const HSA_QUEUE_PERCENTAGE_MAX = 100;

/** HsaSystemProperties */
export interface HsaSystemProperties {
  NumNodes: number;
  PlatformOem: number;
  PlatformId: number;
  PlatformRev: number;
}

/** HSA_CAPABILITY bits the tests read (ui32 view of HsaNodeProperties.Capability). */
export const HSA_CAP_SVMAPI_SUPPORTED = 0x08000000;

/** HsaNodeProperties, the fields kemu's topology fills. */
export interface HsaNodeProperties {
  NumCPUCores: number;
  NumFComputeCores: number;
  NumMemoryBanks: number;
  NumCaches: number;
  NumIOLinks: number;
  CComputeIdLo: number;
  FComputeIdLo: number;
  Capability: number;
  MaxWavesPerSIMD: number;
  LDSSizeInKB: number;
  GDSSizeInKB: number;
  WaveFrontSize: number;
  NumShaderBanks: number;
  NumArrays: number;
  NumCUPerArray: number;
  NumSIMDPerCU: number;
  MaxSlotsScratchCU: number;
  VendorId: number;
  DeviceId: number;
  LocationId: number;
  LocalMemSize: number;
  MaxEngineClockMhzFCompute: number;
  MaxEngineClockMhzCCompute: number;
  DrmRenderMinor: number;
  MarketingName: string;
  AMDName: string;
  EngineId: { uCode: number; Major: number; Minor: number; Stepping: number };
  NumSdmaEngines: number;
  NumSdmaXgmiEngines: number;
  NumSdmaQueuesPerEngine: number;
  NumCpQueues: number;
  NumGws: number;
  Integrated: number;
  Domain: number;
  UniqueID: number;
  HiveID: number;
  KFDGpuID: number;
  FamilyID: number;
}

/** HsaMemoryProperties */
export interface HsaMemoryProperties {
  HeapType: number;
  SizeInBytes: number;
  Flags: number;
  Width: number;
  MemoryClockMax: number;
}

/** HsaQueueResource: QueueRptrValue/QueueWptrValue are inputs for AQL queues, outputs otherwise. */
export interface HsaQueueResource {
  QueueId: number;
  /** kemu: the doorbell's byte offset in the GPU's doorbell BAR (see HsaKmt.ringDoorbell). */
  QueueDoorBell: number;
  /** User addresses of the queue's write and read indices (64-bit each). */
  QueueWptrValue: number;
  QueueRptrValue: number;
}

// HSA_QUEUE_PRIORITY
export const HSA_QUEUE_PRIORITY_MINIMUM = -3;
export const HSA_QUEUE_PRIORITY_MAXIMUM = 3;

/** HsaVersionInfo */
export interface HsaVersionInfo {
  KernelInterfaceMajorVersion: number;
  KernelInterfaceMinorVersion: number;
}

// HsaEventData.EventData.MemoryAccessFault.Flags
export const HSA_EVENTID_MEMORY_RECOVERABLE = 0;
export const HSA_EVENTID_MEMORY_FATAL_PROCESS = 1;
export const HSA_EVENTID_MEMORY_FATAL_VM = 2;

/** HSA_EVENTTYPE_MAXID: event types at or above are rejected. */
export const HSA_EVENTTYPE_MAXID = 9;

// FamilyID values of the GPU generations kemu models (hsakmttypes.h / amdgpu_drm.h)
export const FAMILY_VI = 130;
export const FAMILY_AI = 141;
export const FAMILY_NV = 143;

// HsaMemoryProperties.HeapType
export const HSA_HEAPTYPE_SYSTEM = 0;
export const HSA_HEAPTYPE_FRAME_BUFFER_PUBLIC = 1;
export const HSA_HEAPTYPE_FRAME_BUFFER_PRIVATE = 2;

/** HsaMemoryAccessFault: what a memory event reports. */
export interface HsaMemoryAccessFault {
  NodeId: number;
  VirtualAddress: number;
  Failure: { NotPresent: number; ReadOnly: number; NoExecute: number; GpuAccess: number; ECC: number; Imprecise: number; ErrorType: number };
  Flags: number;
}

/** HsaEventData: the type, its payload, and the kernel-side ids (HWData1..3). */
export interface HsaEventData {
  EventType: number;
  EventData: { SyncVar?: { SyncVar: number; SyncVarSize: number }; MemoryAccessFault?: HsaMemoryAccessFault };
  /** Event id. */
  HWData1: number;
  /** Signal events: the mailbox (slot) address the CP writes the id to. */
  HWData2: number;
  /** Signal events: the trigger data (the id). */
  HWData3: number;
}

/** HsaEvent */
export interface HsaEvent {
  EventId: number;
  EventData: HsaEventData;
}

/** HsaEventDescriptor */
export interface HsaEventDescriptor {
  EventType: number;
  NodeId: number;
  SyncVar?: { SyncVar: number; SyncVarSize: number };
}
