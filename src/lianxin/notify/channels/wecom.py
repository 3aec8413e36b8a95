"""WeCom (企业微信) group robot: POST {base}/cgi-bin/webhook/send?key=<token>, a text message."""

from urllib.parse import quote

from lianxin.notify.channels import Message, full_text
from lianxin.notify.channels.http import post_json, vendor_result

BASE = "https://qyapi.weixin.qq.com"


def send(channel, message: Message) -> str:
    url = f"{(channel.url or BASE).rstrip('/')}/cgi-bin/webhook/send?key={quote(channel.token)}"
    payload = {"msgtype": "text", "text": {"content": f"{message.title}\n{full_text(message)}"}}
    return vendor_result(post_json(url, payload), "errcode")
