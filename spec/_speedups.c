/* spec._speedups: optional compiled twins of spec.fastpath.scan_sends and of the batch frame
 * builders of a fan-out (reference.frames.delivers_data and acks_data).
 *
 * The pure-Python function is the definition and the tested default; this one must give the
 * same result for every input (tests/test_fastpath.py runs both against construct and against
 * each other). It is used only when it has been built (`make speedups`) and the environment
 * does not say CHATWIRE_PURE=1.
 *
 * scan_sends(buf, pos, max_frame, limit) -> (run, end): the run of whole, well-formed SEND
 * frames at buf[pos:], at most `limit`, each as (room UTF-8 bytes, text str16 bytes), and
 * where the run ends. Consecutive SENDs to the same room share one room bytes object. The run
 * stops before the first frame that is not one: another type, not whole, a length of 0 or
 * over max_frame, or a body decode_send would refuse (strings overrunning, trailing bytes,
 * invalid UTF-8, U+0000).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define SEND_TYPE 0x10

/* Text as spec.fastpath._is_text judges it: strict UTF-8 without U+0000 (which valid UTF-8
 * can only spell as a zero byte). 1: text; 0: not; -1: an error other than bad UTF-8. */
static int
is_text(const unsigned char *p, Py_ssize_t n)
{
    if (n == 0) {
        return 1;
    }
    if (memchr(p, 0, (size_t)n) != NULL) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] & 0x80) {
            PyObject *decoded = PyUnicode_DecodeUTF8((const char *)p, n, "strict");
            if (decoded != NULL) {
                Py_DECREF(decoded);
                return 1;
            }
            if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                PyErr_Clear();
                return 0;
            }
            return -1;
        }
    }
    return 1;
}

static PyObject *
scan_sends(PyObject *module, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos, max_frame, limit;
    if (!PyArg_ParseTuple(args, "y*nnn:scan_sends", &view, &pos, &max_frame, &limit)) {
        return NULL;
    }
    PyObject *run = NULL, *room = NULL, *result = NULL;
    if (pos < 0) {
        PyErr_SetString(PyExc_ValueError, "pos must not be negative");
        goto done;
    }
    run = PyList_New(0);
    if (run == NULL) {
        goto done;
    }
    const unsigned char *d = (const unsigned char *)view.buf;
    const Py_ssize_t n = view.len;
    while (n - pos >= 5 && d[pos + 4] == SEND_TYPE && PyList_GET_SIZE(run) < limit) {
        const Py_ssize_t length = ((Py_ssize_t)d[pos] << 24) | ((Py_ssize_t)d[pos + 1] << 16)
                                  | ((Py_ssize_t)d[pos + 2] << 8) | (Py_ssize_t)d[pos + 3];
        if (length <= 0 || length > max_frame || length > n - pos - 4) {
            break;
        }
        const Py_ssize_t end = pos + 4 + length;
        const Py_ssize_t room_at = pos + 5;
        if (room_at >= end) {
            break;
        }
        const Py_ssize_t text_at = room_at + 1 + d[room_at];
        if (text_at + 2 > end || text_at + 2 + ((d[text_at] << 8) | d[text_at + 1]) != end) {
            break;
        }
        const unsigned char *room_p = d + room_at + 1;
        const Py_ssize_t room_n = text_at - room_at - 1;
        if (room == NULL || PyBytes_GET_SIZE(room) != room_n
            || memcmp(PyBytes_AS_STRING(room), room_p, (size_t)room_n) != 0) {
            int ok = is_text(room_p, room_n);
            if (ok < 0) {
                goto done;
            }
            if (!ok) {
                break;
            }
            PyObject *fresh = PyBytes_FromStringAndSize((const char *)room_p, room_n);
            if (fresh == NULL) {
                goto done;
            }
            Py_XSETREF(room, fresh);
        }
        int ok = is_text(d + text_at + 2, end - text_at - 2);
        if (ok < 0) {
            goto done;
        }
        if (!ok) {
            break;
        }
        PyObject *text16 = PyBytes_FromStringAndSize((const char *)d + text_at, end - text_at);
        if (text16 == NULL) {
            goto done;
        }
        PyObject *entry = PyTuple_Pack(2, room, text16);
        Py_DECREF(text16);
        if (entry == NULL) {
            goto done;
        }
        int appended = PyList_Append(run, entry);
        Py_DECREF(entry);
        if (appended < 0) {
            goto done;
        }
        pos = end;
    }
    result = Py_BuildValue("(On)", run, pos);
done:
    Py_XDECREF(room);
    Py_XDECREF(run);
    PyBuffer_Release(&view);
    return result;
}

static void
put_u32(unsigned char *p, unsigned long long v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void
put_u64(unsigned char *p, unsigned long long v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

/* delivers_acks(deliver_type, ack_type, room8, first_seq, sender8, texts16)
 *   -> (delivers, acks): a batch's DELIVER frames (seqs first_seq, first_seq + 1, ...) and its
 * ACK frames, each joined into one bytes: the same bytes as reference.frames.delivers_data and
 * acks_data. The frame types come from the caller (spec.constants is the one place they are
 * defined). */
static PyObject *
delivers_acks(PyObject *module, PyObject *args)
{
    Py_buffer room, sender;
    PyObject *first_obj, *texts_obj, *result = NULL, *texts = NULL, *delivers = NULL, *acks = NULL;
    int deliver_type, ack_type;
    if (!PyArg_ParseTuple(args, "iiy*Oy*O:delivers_acks", &deliver_type, &ack_type, &room,
                          &first_obj, &sender, &texts_obj)) {
        return NULL;
    }
    unsigned long long first = PyLong_AsUnsignedLongLong(first_obj);
    if (first == (unsigned long long)-1 && PyErr_Occurred()) {
        goto done;
    }
    texts = PySequence_Fast(texts_obj, "texts16 must be a sequence of bytes");
    if (texts == NULL) {
        goto done;
    }
    const Py_ssize_t count = PySequence_Fast_GET_SIZE(texts);
    if (count > 0 && first > ~0ULL - (unsigned long long)(count - 1)) {
        PyErr_SetString(PyExc_OverflowError, "seq past 2**64 - 1");
        goto done;
    }
    const Py_ssize_t fixed = 4 + 1 + room.len + 8 + sender.len;
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *text = PySequence_Fast_GET_ITEM(texts, i);
        if (!PyBytes_Check(text)) {
            PyErr_SetString(PyExc_TypeError, "texts16 must be a sequence of bytes");
            goto done;
        }
        const Py_ssize_t body = fixed - 4 + PyBytes_GET_SIZE(text);
        if (body > 0xFFFFFFFFLL) {
            PyErr_SetString(PyExc_OverflowError, "DELIVER frame too long");
            goto done;
        }
        total += 4 + body;
    }
    delivers = PyBytes_FromStringAndSize(NULL, total);
    acks = PyBytes_FromStringAndSize(NULL, count * (4 + 1 + room.len + 8));
    if (delivers == NULL || acks == NULL) {
        goto done;
    }
    unsigned char *d = (unsigned char *)PyBytes_AS_STRING(delivers);
    unsigned char *a = (unsigned char *)PyBytes_AS_STRING(acks);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *text = PySequence_Fast_GET_ITEM(texts, i);
        const Py_ssize_t text_len = PyBytes_GET_SIZE(text);
        const unsigned long long seq = first + (unsigned long long)i;
        put_u32(d, (unsigned long long)(fixed - 4 + text_len));
        d[4] = (unsigned char)deliver_type;
        memcpy(d + 5, room.buf, (size_t)room.len);
        put_u64(d + 5 + room.len, seq);
        memcpy(d + 13 + room.len, sender.buf, (size_t)sender.len);
        memcpy(d + fixed, PyBytes_AS_STRING(text), (size_t)text_len);
        d += fixed + text_len;
        put_u32(a, (unsigned long long)(1 + room.len + 8));
        a[4] = (unsigned char)ack_type;
        memcpy(a + 5, room.buf, (size_t)room.len);
        put_u64(a + 5 + room.len, seq);
        a += 4 + 1 + room.len + 8;
    }
    result = PyTuple_Pack(2, delivers, acks);
done:
    Py_XDECREF(delivers);
    Py_XDECREF(acks);
    Py_XDECREF(texts);
    PyBuffer_Release(&room);
    PyBuffer_Release(&sender);
    return result;
}

static PyMethodDef methods[] = {
    {"scan_sends", scan_sends, METH_VARARGS,
     "scan_sends(buf, pos, max_frame, limit) -> (run, end): as spec.fastpath.scan_sends."},
    {"delivers_acks", delivers_acks, METH_VARARGS,
     "delivers_acks(deliver_type, ack_type, room8, first_seq, sender8, texts16) -> "
     "(delivers, acks): a batch's DELIVERs and ACKs, each joined."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "spec._speedups",
    "Optional compiled twins of spec.fastpath.scan_sends and of a fan-out's frame builders.", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
