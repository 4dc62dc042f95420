"""serializer"""
