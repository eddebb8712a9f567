"""Photo uploads: PUT under a device-made UUID (idempotent), checked by magic bytes and size,
kept in PostgreSQL and served as immutable files."""

from __future__ import annotations

import hashlib
import io
import uuid

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from PIL import Image

from fieldline.server import create_app
from fieldline.settings import Settings


def image(fmt: str, colour: str = "red", size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")],
)
def test_a_photo_is_stored_once_and_served_immutable(
    client: FlaskClient, connection: sa.Connection, fmt: str, content_type: str
) -> None:
    data = image(fmt)
    upload_id = str(uuid.uuid4())
    put = client.put(f"/api/v1/uploads/{upload_id}", data=data, content_type=content_type)
    assert put.status_code == 200, put.get_json()
    body = put.get_json()
    assert body == {
        "id": upload_id,
        "url": f"/api/v1/uploads/{upload_id}",
        "content_type": content_type,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    stored = connection.execute(
        sa.text("SELECT data, uploaded_by FROM uploads WHERE id = :id"), {"id": upload_id}
    ).one()
    assert bytes(stored.data) == data

    got = client.get(body["url"])
    assert got.status_code == 200
    assert got.data == data
    assert got.mimetype == content_type
    assert "immutable" in got.headers["Cache-Control"]
    assert got.headers["ETag"] == f'"{body["sha256"]}"'
    again = client.get(body["url"], headers={"If-None-Match": got.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_a_retried_upload_is_idempotent_and_other_bytes_conflict(
    client: FlaskClient, connection: sa.Connection
) -> None:
    upload_id = uuid.uuid4()
    first = image("PNG", "red")
    url = f"/api/v1/uploads/{upload_id}"
    assert client.put(url, data=first, content_type="image/png").status_code == 200
    retry = client.put(url, data=first, content_type="image/png")
    assert retry.status_code == 200
    assert retry.get_json()["sha256"] == hashlib.sha256(first).hexdigest()
    other = client.put(url, data=image("PNG", "blue"), content_type="image/png")
    assert other.status_code == 409
    assert other.mimetype == "application/problem+json"
    count = connection.execute(
        sa.text("SELECT count(*) FROM uploads WHERE id = :id"), {"id": upload_id}
    ).scalar()
    assert count == 1
    assert client.get(url).data == first  # the first bytes stay


def test_the_body_must_be_the_image_it_claims(client: FlaskClient) -> None:
    url = f"/api/v1/uploads/{uuid.uuid4()}"
    pdf = b"%PDF-1.7\n" + b"0" * 100
    refused = client.put(url, data=pdf, content_type="application/pdf")
    assert refused.status_code == 415
    assert refused.get_json()["field"] == "Content-Type"
    disguised = client.put(url, data=pdf, content_type="image/jpeg")
    assert disguised.status_code == 415
    assert disguised.get_json()["field"] == "body"
    mislabelled = client.put(url, data=image("PNG"), content_type="image/jpeg")
    assert mislabelled.status_code == 415
    assert "image/png" in mislabelled.get_json()["detail"]
    assert client.get(url).status_code == 404  # nothing was stored


def test_a_photo_over_the_limit_is_refused(settings: Settings, connection: sa.Connection) -> None:
    small = settings.model_copy(update={"photo_max_bytes": 2048})
    client = create_app(small, bind=connection).test_client()
    url = f"/api/v1/uploads/{uuid.uuid4()}"
    big = image("PNG", size=(200, 200)) + b"\0" * 4096  # trailing bytes: still a PNG start
    response = client.put(url, data=big, content_type="image/png")
    assert response.status_code == 413
    assert response.get_json()["max_bytes"] == 2048
    fits = image("PNG")
    assert len(fits) <= 2048
    assert client.put(url, data=fits, content_type="image/png").status_code == 200


def test_an_upload_id_is_a_uuid(client: FlaskClient) -> None:
    response = client.put("/api/v1/uploads/photo-1", data=image("PNG"), content_type="image/png")
    assert response.status_code == 422
    assert response.get_json()["field"] == "upload_id"
    assert client.get("/api/v1/uploads/photo-1").status_code == 422
    assert client.get(f"/api/v1/uploads/{uuid.uuid4()}").status_code == 404
