"""Faces in photos: detect (dlib) -> align (the FFHQ crop) -> ... -> paste back; the sidecar remembers where."""

from stylecli.faces.align import ALIGNED_SIZE, align_crop, face_quad
from stylecli.faces.detect import Face, FaceAligner, parse_faces_option, select_faces
from stylecli.faces.paste import crop_to_image_affine, face_mask, paste_back
from stylecli.faces.sidecar import read_sidecar, sidecar_photo, write_sidecar

__all__ = ["ALIGNED_SIZE", "Face", "FaceAligner", "align_crop", "crop_to_image_affine", "face_mask", "face_quad",
           "parse_faces_option", "paste_back", "read_sidecar", "select_faces", "sidecar_photo", "write_sidecar"]
