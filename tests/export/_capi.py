"""Runs a SavedModel signature through TensorFlow's C API, the C++ loader TF Serving uses.

No TensorFlow Python here (only ctypes, numpy, json, sys): the SavedModel is loaded by
``TF_LoadSessionFromSavedModel`` from ``libtensorflow_cc.so.2`` (shipped in the TensorFlow
wheel, with ``libtensorflow_framework.so.2`` beside it), with the tag ``serve``, and the
signature is run by ``TF_SessionRun`` on the graph tensors its SignatureDef names. On
success the last line printed is ``CAPI_OK`` followed by the JSON list of the ``tensorflow``
and ``keras`` modules ever imported (always ``[]``; the script fails if any were).

    python tests/export/_capi.py SAVED_MODEL_DIR SPEC.json INPUTS.npz OUTPUTS.npz

SPEC.json, written by a parent process that reads the SignatureDef::

    {"library": ".../tensorflow/libtensorflow_cc.so.2",
     "inputs": {"user": {"name": "serving_default_user:0", "dtype": "int64", "shape": [-1]}},
     "outputs": {"ctr": {"name": "StatefulPartitionedCall:0", "dtype": "float32", "shape": [-1]}}}

Arrays travel in npz files through ``save_arrays`` / ``load_arrays``: a string tensor (any
bytes, NUL bytes included) is stored as its concatenated bytes plus a ``<key>.lengths``
array of the tensor's shape, so nothing is pickled.
"""

import ctypes
import json
import sys

import numpy as np

TAG = b"serve"
LENGTHS = ".lengths"
# TF_DataType codes (tensorflow/c/tf_datatype.h) of the dtypes a signature here may use.
TF_DTYPES = {"float32": 1, "float64": 2, "int32": 3, "uint8": 4, "string": 7, "int64": 9, "bool": 10}
STRING = TF_DTYPES["string"]
NUMPY_DTYPES = {code: name for name, code in TF_DTYPES.items() if name != "string"}
# sizeof(TF_TString) on 64-bit builds (tensorflow/tsl/platform/ctstring_internal.h); checked
# against the loaded library by `_check_tstring_size`.
TSTRING_SIZE = 24


class TF_Output(ctypes.Structure):
    _fields_ = [("oper", ctypes.c_void_p), ("index", ctypes.c_int)]


_P, _I, _SIZE = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
# name: (restype, argtypes), as declared in tensorflow/c/c_api.h, tf_tensor.h, tf_tstring.h.
_SIGNATURES = {
    "TF_NewStatus": (_P, []),
    "TF_DeleteStatus": (None, [_P]),
    "TF_GetCode": (_I, [_P]),
    "TF_Message": (ctypes.c_char_p, [_P]),
    "TF_NewGraph": (_P, []),
    "TF_DeleteGraph": (None, [_P]),
    "TF_NewSessionOptions": (_P, []),
    "TF_DeleteSessionOptions": (None, [_P]),
    "TF_LoadSessionFromSavedModel": (_P, [_P, _P, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), _I, _P, _P, _P]),
    "TF_GraphOperationByName": (_P, [_P, ctypes.c_char_p]),
    "TF_OperationNumOutputs": (_I, [_P]),
    "TF_OperationOutputType": (_I, [TF_Output]),
    "TF_SessionRun": (
        None,
        [_P, _P, ctypes.POINTER(TF_Output), ctypes.POINTER(_P), _I, ctypes.POINTER(TF_Output), ctypes.POINTER(_P), _I,
         _P, _I, _P, _P],
    ),
    "TF_CloseSession": (None, [_P, _P]),
    "TF_DeleteSession": (None, [_P, _P]),
    "TF_AllocateTensor": (_P, [_I, ctypes.POINTER(ctypes.c_int64), _I, _SIZE]),
    "TF_DeleteTensor": (None, [_P]),
    "TF_TensorData": (_P, [_P]),
    "TF_TensorByteSize": (_SIZE, [_P]),
    "TF_TensorType": (_I, [_P]),
    "TF_NumDims": (_I, [_P]),
    "TF_Dim": (ctypes.c_int64, [_P, _I]),
    "TF_StringInit": (None, [_P]),
    "TF_StringCopy": (None, [_P, ctypes.c_char_p, _SIZE]),
    "TF_StringGetDataPointer": (_P, [_P]),
    "TF_StringGetSize": (_SIZE, [_P]),
    "TF_StringDealloc": (None, [_P]),
}


def save_arrays(path, arrays):
    """Writes a dict of arrays to ``path`` (npz); string arrays (bytes, or str as UTF-8)
    become data + lengths."""
    stored = {}
    for key, value in arrays.items():
        value = np.asarray(value)
        if value.dtype.kind in "OSU":
            items = [item.encode() if isinstance(item, str) else bytes(item) for item in value.reshape(-1)]
            stored[key] = np.frombuffer(b"".join(items), dtype=np.uint8)
            stored[key + LENGTHS] = np.array([len(item) for item in items], dtype=np.int64).reshape(value.shape)
        else:
            stored[key] = value
    np.savez(path, **stored)


def _bytes_array(items, shape):
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array.reshape(shape)


def load_arrays(path):
    """Reads what ``save_arrays`` wrote; string tensors come back as object arrays of bytes."""
    with np.load(path, allow_pickle=False) as stored:
        arrays = {}
        for key in stored.files:
            if key.endswith(LENGTHS):
                continue
            if key + LENGTHS in stored.files:
                lengths = stored[key + LENGTHS]
                data = stored[key].tobytes()
                ends = np.cumsum(lengths.reshape(-1))
                items = [data[end - size : end] for end, size in zip(ends.tolist(), lengths.reshape(-1).tolist())]
                arrays[key] = _bytes_array(items, lengths.shape)
            else:
                arrays[key] = stored[key]
        return arrays


def load_library(path):
    lib = ctypes.CDLL(path)
    for name, (restype, argtypes) in _SIGNATURES.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    _check_tstring_size(lib)
    return lib


def _check_tstring_size(lib):
    # TF_StringInit zeroes the whole struct (a memset of its union), so the bytes it clears
    # in a buffer of 0xFF are sizeof(TF_TString) in this build.
    buffer = (ctypes.c_ubyte * (4 * TSTRING_SIZE))(*([0xFF] * (4 * TSTRING_SIZE)))
    lib.TF_StringInit(ctypes.addressof(buffer))
    cleared = bytes(buffer).index(b"\xff")
    if cleared != TSTRING_SIZE:
        raise RuntimeError(f"sizeof(TF_TString) is {cleared} in this build; this script assumes {TSTRING_SIZE}.")


def _check(lib, status, what):
    code = lib.TF_GetCode(status)
    if code != 0:
        raise RuntimeError(f"{what} failed with TF_Code {code}: {lib.TF_Message(status).decode()}")


def _output(lib, graph, tensor_name, dtype):
    """The graph tensor ``op:index``, checked to exist and to hold ``dtype``."""
    op_name, _, index = tensor_name.rpartition(":")
    if not op_name or not index.isdigit():
        raise ValueError(f"Tensor names look like 'op:index'. Received: {tensor_name!r}")
    operation = lib.TF_GraphOperationByName(graph, op_name.encode())
    if not operation:
        raise KeyError(f"The SavedModel's graph has no operation {op_name!r} (tensor {tensor_name!r}).")
    if int(index) >= lib.TF_OperationNumOutputs(operation):
        raise KeyError(f"{op_name!r} has {lib.TF_OperationNumOutputs(operation)} outputs; {tensor_name!r} asks for more.")
    output = TF_Output(operation, int(index))
    code = lib.TF_OperationOutputType(output)
    if code != TF_DTYPES.get(dtype):
        raise TypeError(f"{tensor_name!r} holds TF_DataType {code}; the spec says {dtype!r} ({TF_DTYPES.get(dtype)}).")
    return output


def _check_array(key, array, spec):
    expected = spec["shape"]
    if expected is not None and (
        array.ndim != len(expected) or any(e not in (-1, d) for e, d in zip(expected, array.shape))
    ):
        raise ValueError(f"Input {key!r}: the signature expects shape {expected} (-1: any). Received: {array.shape}")
    kind_ok = array.dtype == object if spec["dtype"] == "string" else array.dtype == np.dtype(spec["dtype"])
    if not kind_ok:
        raise TypeError(f"Input {key!r}: the signature expects {spec['dtype']}. Received: {array.dtype}")


def _new_tensor(lib, array, dtype):
    dims = (ctypes.c_int64 * array.ndim)(*array.shape)
    if dtype == "string":
        items = [item if isinstance(item, bytes) else str(item).encode() for item in array.reshape(-1)]
        tensor = lib.TF_AllocateTensor(STRING, dims, array.ndim, len(items) * TSTRING_SIZE)
        data = lib.TF_TensorData(tensor)
        for i, item in enumerate(items):
            lib.TF_StringInit(data + i * TSTRING_SIZE)
            lib.TF_StringCopy(data + i * TSTRING_SIZE, item, len(item))
        return tensor
    array = np.ascontiguousarray(array)
    tensor = lib.TF_AllocateTensor(TF_DTYPES[dtype], dims, array.ndim, array.nbytes)
    ctypes.memmove(lib.TF_TensorData(tensor), array.ctypes.data, array.nbytes)
    return tensor


def _delete_tensor(lib, tensor, dtype, size):
    if dtype == "string":
        data = lib.TF_TensorData(tensor)
        for i in range(size):
            lib.TF_StringDealloc(data + i * TSTRING_SIZE)
    lib.TF_DeleteTensor(tensor)


def _to_array(lib, tensor):
    shape = tuple(lib.TF_Dim(tensor, i) for i in range(lib.TF_NumDims(tensor)))
    code, data = lib.TF_TensorType(tensor), lib.TF_TensorData(tensor)
    if code == STRING:
        items = []
        for i in range(int(np.prod(shape, dtype=np.int64))):
            element = data + i * TSTRING_SIZE
            items.append(ctypes.string_at(lib.TF_StringGetDataPointer(element), lib.TF_StringGetSize(element)))
        return _bytes_array(items, shape)
    if code not in NUMPY_DTYPES:
        raise TypeError(f"Output TF_DataType {code} is not supported here; supported: {sorted(NUMPY_DTYPES)}.")
    raw = ctypes.string_at(data, lib.TF_TensorByteSize(tensor))
    return np.frombuffer(raw, dtype=NUMPY_DTYPES[code]).reshape(shape).copy()


def run_signature(saved_model_dir, spec, inputs):
    """Loads ``saved_model_dir`` (tag ``serve``) and runs the tensors ``spec`` names on ``inputs``."""
    lib = load_library(spec["library"])
    missing = sorted(set(spec["inputs"]) - set(inputs))
    extra = sorted(set(inputs) - set(spec["inputs"]))
    if missing or extra:
        raise KeyError(f"The signature takes {sorted(spec['inputs'])}. Missing: {missing}; unexpected: {extra}.")
    status, graph, options = lib.TF_NewStatus(), lib.TF_NewGraph(), lib.TF_NewSessionOptions()
    tags = (ctypes.c_char_p * 1)(TAG)
    session = lib.TF_LoadSessionFromSavedModel(options, None, saved_model_dir.encode(), tags, 1, graph, None, status)
    _check(lib, status, f"TF_LoadSessionFromSavedModel({saved_model_dir!r}, tags=['serve'])")
    keys = sorted(spec["inputs"])
    in_specs = [spec["inputs"][key] for key in keys]
    for key, in_spec in zip(keys, in_specs):
        _check_array(key, inputs[key], in_spec)
    in_ops = (TF_Output * len(keys))(*[_output(lib, graph, s["name"], s["dtype"]) for s in in_specs])
    in_values = (ctypes.c_void_p * len(keys))(*[_new_tensor(lib, inputs[k], s["dtype"]) for k, s in zip(keys, in_specs)])
    out_keys = sorted(spec["outputs"])
    out_specs = [spec["outputs"][key] for key in out_keys]
    out_ops = (TF_Output * len(out_keys))(*[_output(lib, graph, s["name"], s["dtype"]) for s in out_specs])
    out_values = (ctypes.c_void_p * len(out_keys))()
    lib.TF_SessionRun(session, None, in_ops, in_values, len(keys), out_ops, out_values, len(out_keys), None, 0, None, status)
    _check(lib, status, f"TF_SessionRun of {out_keys}")
    outputs = {}
    for key, tensor in zip(out_keys, out_values):
        outputs[key] = _to_array(lib, tensor)
        lib.TF_DeleteTensor(tensor)
    # Only now: an output may share an input's buffer (an Identity does), strings included.
    for tensor, key, in_spec in zip(in_values, keys, in_specs):
        _delete_tensor(lib, tensor, in_spec["dtype"], inputs[key].size)
    lib.TF_CloseSession(session, status)
    _check(lib, status, "TF_CloseSession")
    lib.TF_DeleteSession(session, status)
    lib.TF_DeleteGraph(graph)
    lib.TF_DeleteSessionOptions(options)
    lib.TF_DeleteStatus(status)
    return outputs


def imported_tensorflow():
    """The TensorFlow and Keras modules in ``sys.modules``."""
    return sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"))


def main(argv):
    if len(argv) != 4:
        raise SystemExit(f"usage: python {__file__} SAVED_MODEL_DIR SPEC.json INPUTS.npz OUTPUTS.npz")
    saved_model_dir, spec_path, inputs_path, outputs_path = argv
    with open(spec_path) as file:
        spec = json.load(file)
    save_arrays(outputs_path, run_signature(saved_model_dir, spec, load_arrays(inputs_path)))
    modules = imported_tensorflow()
    if modules:
        raise SystemExit(f"TensorFlow Python was imported: {modules}")
    print("CAPI_OK", json.dumps(modules))


if __name__ == "__main__":
    main(sys.argv[1:])
